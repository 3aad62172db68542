"""The inventory poller: what each DynamoDB table is, polled into the store for every replica.

Every ``interval_s`` the replica holding the store lease ``inventory`` polls each account
(its own, and one per role) in each region: ListTables, DescribeLimits once, then per table
DescribeTable, ListTagsOfResource, DescribeTimeToLive, DescribeContinuousBackups and
DescribeContributorInsights, each table's document stored as it is done. Every minute it
also reads the most throttled keys of the tables that throttle (insights.py).

Nothing here stops the receiver. A call throttled past botocore's retries, or one that got
no answer, ends that account and region's poll; it is polled again after a backoff. A call
refused for one table (no permission, an error) leaves a note in that table's ``problems``
and the rest of its document stands. A refused ListTables or AssumeRole skips the account
and region until the next poll. Each is counted, and logged once per poll.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import socket
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from uuid import uuid4

from receiver.backoff import FULL_JITTER, Backoff
from receiver.inventory.clients import OWN, AccountAccess, CallError, ClientSource, InventoryClients, call
from receiver.inventory.counters import THROTTLED, InventoryCounters
from receiver.inventory.describe import (
    DELETED,
    contributor_insights_of,
    deleted_document,
    limits_document,
    point_in_time_recovery_of,
    table_document,
    tags_of,
    ttl_of,
)
from receiver.inventory.documents import TableDocument, item_of, table_of
from receiver.inventory.insights import INSIGHTS_INTERVAL_S, top_keys_pass
from receiver.inventory.settings import InventorySettings
from receiver.model import LIMITS, TABLE
from receiver.store.base import Store, StoreError

log = logging.getLogger(__name__)

LEASE = "inventory"
CONCURRENCY = 4
"""Accounts and regions polled at once (each has its own clients and AWS limits)."""
RELEASE_TIMEOUT_S = 10.0
NOT_FOUND = "ResourceNotFoundException"
LIMITS_EVERY_S = 55.0
"""DescribeLimits at most about once a minute per account and region: its reference says to
expect throttling when it is called more than once in a minute (a retry soon after a cut-off
poll leaves it out)."""
TAGS_PER_S = 8.0
"""ListTagsOfResource calls per second per account, at most: DynamoDB allows 10."""

Target = tuple[str, str]
"""(source, region): what is polled, and retried, as one. The source is OWN or a role ARN."""


def _source_name(source: str) -> str:
    return source or "default credentials"


class _Pace:
    """Spaces calls sharing a key at least ``1 / per_s`` apart (on the event loop's clock)."""

    def __init__(self, per_s: float) -> None:
        self._gap = 1.0 / per_s
        self._next: dict[str, float] = {}

    async def wait(self, key: str) -> None:
        now = asyncio.get_running_loop().time()
        at = max(now, self._next.get(key, now))
        self._next[key] = at + self._gap
        if at > now:
            await asyncio.sleep(at - now)


class _Round:
    """One poll's tally, for its summary line and its warnings."""

    def __init__(self, counters: InventoryCounters, started: float) -> None:
        self.started = started
        self.calls = counters.total()
        self.ok = counters.total("ok")
        self.tables = 0
        self.problems: dict[tuple[str, str, str], tuple[int, str]] = {}
        """(account, region, API) -> (tables it failed for, the first message)."""

    def problem(self, account: str, region: str, api: str, message: str) -> None:
        count, first = self.problems.get((account, region, api), (0, message))
        self.problems[(account, region, api)] = (count + 1, first)


class InventoryPoller:
    """Polls the inventory while this replica holds the lease; see the module docstring."""

    def __init__(
        self,
        store: Store,
        settings: InventorySettings,
        *,
        clock: Callable[[], float] = time.time,
        counters: InventoryCounters | None = None,
        clients: ClientSource | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.counters = counters if counters is not None else InventoryCounters()
        self.clients: ClientSource = (
            clients if clients is not None else InventoryClients(settings.roles, settings.regions[0], clock=clock)
        )
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid4().hex[:8]}"
        """Who this replica is to the lease."""
        self.backoff = Backoff(initial_s=5.0, max_s=max(5.0, settings.interval_s), jitter=FULL_JITTER)
        """The wait before an account and region whose poll was throttled or cut off is polled again."""
        self.insights_backoff = Backoff(initial_s=60.0, max_s=900.0, jitter=FULL_JITTER)
        self._clock = clock
        self._retries: dict[Target, tuple[int, float]] = {}
        """Targets to poll again before the next poll: (failures in a row, when, clock seconds)."""
        self._insights_retries: dict[Target, tuple[int, float]] = {}
        self._complete: dict[Target, bool] = {}
        """Whether each target's latest poll listed and described it to the end."""
        self._tables: dict[Target, int] = {}
        self._limits_asked: dict[Target, float] = {}
        self._tag_pace = _Pace(TAGS_PER_S)
        self._lease_ms = int(2 * settings.interval_s * 1000)

    # ---- the loop ----

    async def run(self) -> None:
        """Poll every ``interval_s`` and read top keys every minute while holding the lease;
        without it, try to take it every ``interval_s``. Until cancelled: then the lease is
        released and this returns."""
        interval = self.settings.interval_s
        next_poll = next_insights = self._clock()
        try:
            while True:
                now = self._clock()
                if await self._hold(now):
                    if now >= next_poll:
                        await self._guarded(self.poll_once())
                        next_poll = now + interval
                    else:
                        due = [target for target, (_, at) in self._retries.items() if at <= now]
                        if due:
                            await self._guarded(self._poll(due))
                    if self._clock() >= next_insights:
                        await self._guarded(self.insights_once())
                        next_insights = self._clock() + INSIGHTS_INTERVAL_S
                    wake = min([next_poll, next_insights, *(at for _, at in self._retries.values())])
                else:
                    next_poll = next_insights = now  # at once, when the lease comes
                    wake = now + interval
                await asyncio.sleep(min(max(0.0, wake - self._clock()), interval))
        except asyncio.CancelledError:
            await self._release()

    async def _guarded(self, work: Awaitable[None]) -> None:
        try:
            await work
        except StoreError as exc:
            log.warning("inventory: the store failed, trying again later", extra={"error": str(exc)})
        except Exception:  # a bug in one round must not end the inventory
            log.exception("inventory: a round failed, trying again later")

    async def _hold(self, now: float) -> bool:
        try:
            held = await self.store.take_lease(LEASE, self.holder, int(now * 1000), self._lease_ms)
        except StoreError as exc:
            log.warning("inventory: could not take or renew the lease", extra={"error": str(exc)})
            held = False
        if held != self.counters.holding_lease:
            log.info("inventory lease " + ("taken" if held else "lost"), extra={"holder": self.holder})
        self.counters.holding_lease = held
        return held

    async def _release(self) -> None:
        if not self.counters.holding_lease:
            return
        self.counters.holding_lease = False
        try:
            async with asyncio.timeout(RELEASE_TIMEOUT_S):
                await self.store.release_lease(LEASE, self.holder)
        except (StoreError, TimeoutError) as exc:
            log.warning("inventory: could not release the lease; it ends by itself", extra={"error": str(exc)})

    def pending_retries(self) -> dict[Target, float]:
        """Targets waiting to be polled again after a failure: when (clock seconds)."""
        return {target: at for target, (_, at) in self._retries.items()}

    # ---- a poll ----

    def _targets(self) -> list[Target]:
        return [(source, region) for source in self.clients.sources() for region in self.settings.regions]

    async def poll_once(self) -> None:
        """Poll every account in every region once."""
        await self._poll(self._targets())

    async def _poll(self, targets: Iterable[Target]) -> None:
        tally = _Round(self.counters, self._clock())
        regions: dict[str, list[str]] = {}
        for source, region in targets:
            regions.setdefault(source, []).append(region)
        limit = asyncio.Semaphore(CONCURRENCY)

        async def one_source(source: str, in_regions: list[str]) -> None:
            access = await self._access(source, in_regions, "poll")
            if access is not None:
                await asyncio.gather(*(self._poll_target(access, region, tally, limit) for region in in_regions))

        await asyncio.gather(*(one_source(source, in_regions) for source, in_regions in regions.items()))
        end = self._clock()
        every = self._targets()
        if all(self._complete.get(target, False) for target in every):
            self.counters.last_poll_ms = int(end * 1000)
        self.counters.tables = sum(self._tables.get(target, 0) for target in every)
        for (account, region, api), (count, first) in sorted(tally.problems.items()):
            log.warning(
                "inventory: a call failed for some tables; their documents name it in problems",
                extra={"account": account, "region": region, "api": api, "tables": count, "error": first},
            )
        calls = self.counters.total() - tally.calls
        log.info(
            "inventory poll",
            extra={
                "tables": tally.tables,
                "calls": calls,
                "failures": calls - (self.counters.total("ok") - tally.ok),
                "seconds": round(end - tally.started, 3),
            },
        )

    async def _access(self, source: str, regions: list[str], what: str) -> AccountAccess | None:
        """The account of ``source``, or None (logged, and its targets marked) when STS failed."""
        access = self.clients.cached_access(source)
        if access is not None:
            return access
        try:
            found: AccountAccess = await call(
                self.counters,
                "GetCallerIdentity" if source == OWN else "AssumeRole",
                self.clients.new_access,
                source,
            )
        except CallError as exc:
            for region in regions:
                if what == "poll":
                    self._failed((source, region), exc, log_it=False)
                else:
                    self._insights_failed((source, region))
            log.warning(
                "inventory: the account could not be reached, skipped"
                + (" until a later try" if exc.transient else " for this poll"),
                extra={"source": _source_name(source), "regions": ",".join(regions), "error": exc.message},
            )
            return None
        return found

    def _failed(self, target: Target, exc: CallError, *, log_it: bool = True, account: str = "") -> None:
        self._complete[target] = False
        where = {"account": account, "source": _source_name(target[0]), "region": target[1]}
        if not exc.transient:
            self._retries.pop(target, None)
            if log_it:
                log.warning(
                    "inventory: the account and region were skipped for this poll",
                    extra={**where, "api": exc.api, "error": exc.message},
                )
            return
        failures = self._retries.get(target, (0, 0.0))[0] + 1
        delay = self.backoff.delay_s(failures)
        self._retries[target] = (failures, self._clock() + delay)
        if log_it:
            log.warning(
                "inventory: the poll of an account and region was cut off, polled again later",
                extra={**where, "api": exc.api, "error": exc.message, "retry_in_s": round(delay, 1)},
            )

    async def _poll_target(self, access: AccountAccess, region: str, tally: _Round, limit: asyncio.Semaphore) -> None:
        target = (access.source, region)
        async with limit:
            try:
                await self._poll_region(access, region, tally)
            except CallError as exc:
                self._failed(target, exc, account=access.account)
                return
            except StoreError as exc:
                self._failed(target, CallError("store", "failed", "", str(exc), transient=True), account=access.account)
                return
        self._retries.pop(target, None)
        self._complete[target] = True

    async def _poll_region(self, access: AccountAccess, region: str, tally: _Round) -> None:
        now_s = self._clock()
        now_ms = int(now_s * 1000)
        account = access.account
        dynamodb = await asyncio.to_thread(self.clients.client, access, region, "dynamodb")
        names = await self._list_tables(dynamodb)
        target = (access.source, region)
        if now_s - self._limits_asked.get(target, -math.inf) >= LIMITS_EVERY_S:
            self._limits_asked[target] = now_s
            try:
                limits = await call(self.counters, "DescribeLimits", dynamodb.describe_limits)
            except CallError as exc:
                if exc.transient:
                    raise
                tally.problem(account, region, "DescribeLimits", exc.message)
            else:
                body = limits_document(limits)
                await self.store.put_inventory([item_of(LIMITS, account, region, "", now_ms, body)])
        known = {
            item.name: table_of(item)
            for item in await self.store.inventory(TABLE)
            if item.account == account and item.region == region
        }
        live = 0
        for name in names:
            document = await self._table(dynamodb, account, region, name, known.get(name), now_s, tally)
            if document is None:
                continue
            await self.store.put_inventory([item_of(TABLE, account, region, name, now_ms, document)])
            if document["status"] != DELETED:
                live += 1
        listed = set(names)
        for name, document in known.items():
            if name not in listed and document["status"] != DELETED:
                gone = deleted_document(document, now_s)
                await self.store.put_inventory([item_of(TABLE, account, region, name, now_ms, gone)])
        self._tables[(access.source, region)] = live
        tally.tables += live

    async def _list_tables(self, dynamodb: Any) -> list[str]:
        pages = iter(dynamodb.get_paginator("list_tables").paginate())
        names: list[str] = []
        while True:
            # One request per page; the paginator asks again only while a page names a next one,
            # so stopping there never counts a call that was not made.
            page = await call(self.counters, "ListTables", next, pages, None)
            if page is None:
                return names
            names.extend(page.get("TableNames") or ())
            if not page.get("LastEvaluatedTableName"):
                return names

    async def _table(
        self,
        dynamodb: Any,
        account: str,
        region: str,
        name: str,
        previous: TableDocument | None,
        now_s: float,
        tally: _Round,
    ) -> TableDocument | None:
        """The table's document now; None when there is nothing to write (it is gone, and
        the store has no document of it, or one marked deleted already)."""
        problems: dict[str, str] = {}

        async def ask(api: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
            try:
                return await call(self.counters, api, fn, **kwargs)
            except CallError as exc:
                # Throttling and a lost connection hold for the whole region: back off. An
                # error answer (a 5xx) to one of the table's other calls costs only that
                # fact, or one failing call would keep the whole inventory from being kept.
                if exc.transient and (exc.outcome == THROTTLED or not exc.code or api == "DescribeTable"):
                    raise
                if api == "DescribeTable" and exc.code == NOT_FOUND:
                    raise
                problems[api] = exc.message
                tally.problem(account, region, api, exc.message)
                return None

        try:
            described = await ask("DescribeTable", dynamodb.describe_table, TableName=name)
        except CallError as exc:
            if exc.code != NOT_FOUND:
                raise
            if previous is None or previous["status"] == DELETED:
                return None
            return deleted_document(previous, now_s)
        table = described.get("Table") if described else None
        tags: dict[str, str] | None = None
        arn = table.get("TableArn") if table else None
        if arn:
            pages: list[Any] = []
            token: str | None = None
            while True:
                await self._tag_pace.wait(account)
                page = await ask(
                    "ListTagsOfResource",
                    dynamodb.list_tags_of_resource,
                    ResourceArn=arn,
                    **({"NextToken": token} if token else {}),
                )
                if page is None:
                    pages = []
                    break
                pages.append(page.get("Tags") or [])
                token = page.get("NextToken")
                if not token:
                    tags = tags_of(pages)
                    break
        elif table is not None:
            problems["ListTagsOfResource"] = "not asked: DescribeTable gave no table ARN"
        ttl = await ask("DescribeTimeToLive", dynamodb.describe_time_to_live, TableName=name)
        backups = await ask("DescribeContinuousBackups", dynamodb.describe_continuous_backups, TableName=name)
        insights = await ask("DescribeContributorInsights", dynamodb.describe_contributor_insights, TableName=name)
        return table_document(
            account,
            region,
            name,
            table,
            tags=tags,
            ttl=ttl_of(ttl) if ttl is not None else None,
            point_in_time_recovery=point_in_time_recovery_of(backups) if backups is not None else None,
            contributor_insights=contributor_insights_of(insights) if insights is not None else None,
            problems=problems,
        )

    # ---- top keys ----

    async def insights_once(self) -> None:
        """Read the most throttled keys of every table that throttles, in every account and
        region (those backing off after a throttled pass wait their turn)."""
        now_s = self._clock()
        for source in self.clients.sources():
            regions = [
                region
                for region in self.settings.regions
                if self._insights_retries.get((source, region), (0, 0.0))[1] <= now_s
            ]
            if not regions:
                continue
            access = await self._access(source, regions, "insights")
            if access is None:
                continue
            for region in regions:
                target = (source, region)
                try:
                    done = await top_keys_pass(self.store, self.counters, self.clients, access, region, now_s)
                except CallError as exc:
                    delay = self._insights_failed(target)
                    log.warning(
                        "inventory: reading top keys was cut off, tried again later",
                        extra={
                            "account": access.account,
                            "region": region,
                            "api": exc.api,
                            "error": exc.message,
                            "retry_in_s": round(delay, 1),
                        },
                    )
                    continue
                self._insights_retries.pop(target, None)
                failed: dict[str, tuple[int, str, str]] = {}
                for endpoint, failure in done.failures:
                    count, first, first_endpoint = failed.get(failure.api, (0, failure.message, endpoint))
                    failed[failure.api] = (count + 1, first, first_endpoint)
                for api, (count, first, first_endpoint) in sorted(failed.items()):
                    log.warning(
                        "inventory: could not read the top keys of some throttling tables",
                        extra={
                            "account": access.account,
                            "region": region,
                            "api": api,
                            "tables": count,
                            "endpoint": first_endpoint,
                            "error": first,
                        },
                    )
                if done.throttling:
                    log.debug(
                        "inventory top keys",
                        extra={
                            "account": access.account,
                            "region": region,
                            "throttling": done.throttling,
                            "written": done.written,
                        },
                    )

    def _insights_failed(self, target: Target) -> float:
        failures = self._insights_retries.get(target, (0, 0.0))[0] + 1
        delay = self.insights_backoff.delay_s(failures)
        self._insights_retries[target] = (failures, self._clock() + delay)
        return delay
