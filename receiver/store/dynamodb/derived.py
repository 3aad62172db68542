"""Derived values and bucket versions in the DynamoDB table.

Items (beside those of items.py, entities.py and legacy_values.py):

=============  ==================================  ===================================  ==================
item           pk                                  sk                                   attributes
=============  ==================================  ===================================  ==================
bucket         ``V#<step ms>``                     ``<bucket>``                         version,
pointer                                                                                 derived_version,
                                                                                        full_version,
                                                                                        value_count,
                                                                                        chain, chain_rows,
                                                                                        chain_version
value block    ``DB#<step ms>#<group>``            ``<bucket>#<pass id>#<part>``        d (binary)
=============  ==================================  ===================================  ==================

``<bucket>`` is the bucket's start in 13 digits; ``<group>`` two digits (value_blocks.py
spreads metrics over 8 groups). Every item has ``expires_at``: the bucket's start plus the
retention of its step (minutes or hours).

How a bucket's values are kept, and why:

- A *pass* is one store of values into a bucket (``put_derived`` or ``put_derived_changes``).
  It writes one block per group of metrics it changed (value_blocks.py: the values and the
  removals of that group, packed), each an item of its own under a pass id no other pass
  has, and never rewritten. A whole put writes a *base* (every value of the bucket); a
  change writes what changed. So a pass costs write units for what it changed, not for
  every value of every metric it touched (the deriver stores after every delivery).
- Then it commits: one conditional update of the bucket's pointer, whose ``chain`` lists
  the committed passes since the last base, base first (``<pass id>.<groups>.<parts>``: a
  bit per group the pass wrote, and the most parts any of its blocks was cut into). A base
  commits only if the stored ``derived_version`` is older than its version (or the bucket
  has none); a change only if the pointer is still the one it was computed over
  (``derived_version`` and ``chain`` as read). A pass that loses leaves blocks no chain
  names: nobody reads them, and they expire.
- Readers read the pointers first, then the blocks of their groups (strongly consistent)
  and apply each chain in order, using only the blocks it names: removals, then values,
  last write wins on (metric, service, endpoint, instance, region). Blocks are written
  before the commit and never changed, so a reader sees each bucket as of one committed
  pass, all of it or none of it (stronger than before, when a reader could see some
  metrics of a put under way). Minutes' blocks are read with one Query per group over the
  range (billed by the bytes read; a minute holds few blocks outside its chain), hours' by
  key (BatchGetItem), since an hour stored every minute leaves superseded blocks behind
  that no reader should pay for.
- A whole put over values already stored reads them, and stores only the difference as a
  change when that keeps the chain short: an hour, stored whole once a minute, changes
  about half of its values in that time. When a chain's rows (values and removals written
  since its base) pass ``REBASE_FACTOR`` times the values the bucket holds, or it has
  ``MAX_CHAIN`` passes, the next pass writes a base of the whole bucket instead, so a reader
  never reads much more than the bucket holds.
- A block larger than an item (400 KB) is cut in parts of distinct values.

Reads: one metric over a range reads its group's blocks of each bucket (an eighth of the
values, on average); every value of a bucket reads all of its blocks. The pointers of a range are one
Query, as before.

Buckets last stored by an older receiver (one item per metric and bucket: no ``chain``, or a
``derived_version`` an older receiver moved past the ``chain_version`` of the last commit
here) are read as it read them (legacy_values.py) until derived again, and a change cannot
build on them (the deriver then stores the bucket whole). ``prune`` does nothing:
DynamoDB's TTL deletes expired items, and every read here skips items past their
``expires_at`` by the store's clock, so expiry looks the same from every replica before TTL
gets to them.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import NamedTuple

from receiver.model import MINUTE_MS, DerivedKey, DerivedValue
from receiver.store.base import Entity, StoreError, Totals, latest_of, totals_of
from receiver.store.dynamodb import legacy_values, value_blocks
from receiver.store.dynamodb.entities import Entities
from receiver.store.dynamodb.items import MAX_START_MS, Item
from receiver.store.dynamodb.runner import Runner
from receiver.store.dynamodb.table import BATCH_GET_KEYS, BATCH_ITEMS, DynamoDBTable
from receiver.store.dynamodb.value_blocks import GROUPS, Block, PassIds, State, ValueId

MAX_CHAIN = 40
"""Passes a chain holds before the next pass writes a base (keeps the pointer near 1 KB)."""
REBASE_FACTOR = 3
"""A chain that has written more than this many rows per value the bucket holds is rebased."""
DIFF_TRIES = 2
"""Times a whole put stores its difference before it writes a base regardless."""

_POINTER_NEWER = "attribute_not_exists(derived_version) OR derived_version < :v"
_POINTER_SAME = "derived_version = :d AND chain = :c"


def pointer_key(step_ms: int, bucket_ms: int) -> Item:
    return {"pk": {"S": f"V#{step_ms}"}, "sk": {"S": f"{bucket_ms:013d}"}}


def block_key(step_ms: int, group: int, bucket_ms: int, pass_id: str, part: int) -> Item:
    return {"pk": {"S": f"DB#{step_ms}#{group:02d}"}, "sk": {"S": f"{bucket_ms:013d}#{pass_id}#{part}"}}


class Link(NamedTuple):
    """One committed pass of a chain."""

    pass_id: str
    groups: int
    """Bit g is set when the pass wrote a block of group g."""
    parts: int
    """The most parts any of its blocks has."""

    def text(self) -> str:
        return f"{self.pass_id}.{self.groups:x}.{self.parts}"

    @classmethod
    def parse(cls, text: str) -> Link:
        pass_id, groups, parts = text.split(".")
        return cls(pass_id, int(groups, 16), int(parts))

    def keys(self, step_ms: int, bucket_ms: int, groups: Iterable[int]) -> list[Item]:
        return [
            block_key(step_ms, group, bucket_ms, self.pass_id, part)
            for group in groups
            if self.groups >> group & 1
            for part in range(self.parts)
        ]


class Chain(NamedTuple):
    """A bucket's committed passes since its last base, as its pointer holds them."""

    links: tuple[Link, ...]
    rows: int
    """Values and removals written by these passes."""
    text: str


def chain_of(pointer: Item | None) -> Chain | None:
    """The pointer's chain; None for a pointer without one (no values yet, or stored by an
    older receiver: one that stored a bucket after this one moves ``derived_version`` past
    the ``chain_version`` that this one's commit wrote beside the chain)."""
    if pointer is None or "chain" not in pointer or pointer.get("chain_version") != pointer.get("derived_version"):
        return None
    text = pointer["chain"]["S"]
    return Chain(tuple(Link.parse(part) for part in text.split()), int(pointer["chain_rows"]["N"]), text)


def _derived_version(item: Item | None) -> int | None:
    attribute = None if item is None else item.get("derived_version")
    return int(attribute["N"]) if attribute else None


def _check_finite(values: Sequence[DerivedValue], bucket_ms: int) -> None:
    for value in values:
        if not math.isfinite(value.value):
            raise StoreError(
                f"derived value {value.metric} of {value.service} {value.endpoint or ''} at {bucket_ms} "
                f"is {value.value}; the store keeps finite numbers only"
            )


def _value_order(value: DerivedValue) -> tuple[int, str, str, str, str]:
    return (value.time_ms, value.metric, value.service, value.endpoint or "", value.instance or "")


class _Pass(NamedTuple):
    """A pass encoded and ready to write."""

    link: Link
    items: list[Item]
    rows: int


class DerivedValues:
    """Bucket versions and derived values in one table (see the module docstring)."""

    def __init__(
        self,
        table: DynamoDBTable,
        runner: Runner,
        *,
        retention_s: dict[int, int],
        clock: Callable[[], float],
    ) -> None:
        self._table = table
        self._runner = runner
        self._retention_s = retention_s
        self._clock = clock
        self._pass_ids = PassIds()
        self._entities = Entities(table, runner, retention_s=retention_s[MINUTE_MS], clock=clock)

    def _expires_at(self, step_ms: int, bucket_ms: int) -> int:
        return bucket_ms // 1000 + self._retention_s[step_ms]

    def _now(self) -> dict[str, str]:
        return {"N": str(int(self._clock()))}

    # -- versions --------------------------------------------------------------------

    async def bump(self, buckets: Sequence[tuple[int, int]], deadline: float) -> None:
        """Add one to the version of each (step, bucket): after the samples, before the request id."""
        jobs = [
            functools.partial(
                self._table.update,
                pointer_key(step_ms, bucket_ms),
                "SET expires_at = :e ADD version :one",
                {":one": {"N": "1"}, ":e": {"N": str(self._expires_at(step_ms, bucket_ms))}},
                None,
                deadline,
            )
            for step_ms, bucket_ms in buckets
        ]
        await self._runner.gather(jobs)

    async def versions(self, step_ms: int, buckets: Collection[int]) -> dict[int, int]:
        found = dict.fromkeys(buckets, 0)
        for item in await self._get_many([pointer_key(step_ms, bucket) for bucket in sorted(found)]):
            if "version" in item:
                found[int(item["sk"]["S"])] = int(item["version"]["N"])
        return found

    async def _get_many(self, keys: list[Item]) -> list[Item]:
        """The items at ``keys`` that exist, in parallel BatchGetItem calls."""
        chunks = [keys[i : i + BATCH_GET_KEYS] for i in range(0, len(keys), BATCH_GET_KEYS)]
        found = await self._runner.gather([functools.partial(self._table.batch_get, chunk) for chunk in chunks])
        return [item for items in found for item in items]

    async def stale_buckets(self, step_ms: int, since_ms: int) -> list[int]:
        query = functools.partial(
            self._table.query,
            KeyConditionExpression="pk = :pk AND sk >= :lo",
            FilterExpression=(
                "(attribute_not_exists(derived_version) OR derived_version < version) AND expires_at > :now"
            ),
            ExpressionAttributeValues={
                ":pk": pointer_key(step_ms, 0)["pk"], ":lo": {"S": f"{max(since_ms, 0):013d}"}, ":now": self._now(),
            },
            ProjectionExpression="sk",
        )  # fmt: skip
        return [int(item["sk"]["S"]) for item in await self._runner.control(query)]

    # -- storing values ----------------------------------------------------------------

    async def put(self, step_ms: int, bucket_ms: int, version: int, values: Sequence[DerivedValue]) -> bool:
        _check_finite(values, bucket_ms)
        key = pointer_key(step_ms, bucket_ms)
        for attempt in range(DIFF_TRIES + 1):
            pointer = await self._runner.control(
                self._table.get, key, "derived_version, chain_version, chain, chain_rows"
            )
            stored = _derived_version(pointer)
            if stored is not None and stored >= version:
                return False  # values at least as new are stored: write nothing
            chain = chain_of(pointer)
            if chain is None or attempt == DIFF_TRIES:
                break
            state = await self._state(step_ms, bucket_ms, chain, range(GROUPS))
            upserts, removals = await self._runner.work(value_blocks.differences, state, values)
            if self._rebase_due(chain, len(upserts) + len(removals), len(values)):
                break
            condition = (_POINTER_SAME, {":d": {"N": str(stored)}, ":c": {"S": chain.text}})
            if await self._append(step_ms, bucket_ms, version, chain, upserts, removals, len(values), condition):
                await self._touched(step_ms, bucket_ms, values)
                return True
            # Another pass was committed since the pointer was read: look again.
        moved = await self._rebase(step_ms, bucket_ms, version, values, (_POINTER_NEWER, {}))
        if moved:
            await self._touched(step_ms, bucket_ms, values)
        return moved

    async def put_changes(
        self,
        step_ms: int,
        bucket_ms: int,
        base_version: int,
        version: int,
        upserts: Sequence[DerivedValue],
        removals: Collection[DerivedKey],
        total: int,
    ) -> bool:
        """Store what changed as one pass over the committed values computed at
        ``base_version`` (see the module docstring)."""
        _check_finite(upserts, bucket_ms)
        pointer = await self._runner.control(self._table.get, pointer_key(step_ms, bucket_ms), None)
        chain = chain_of(pointer)
        if chain is None or _derived_version(pointer) != base_version or version < base_version:
            return False  # not the values it was computed over (or an older receiver's): put them whole
        removed = [value_blocks.removal_id(key) for key in removals]
        condition = (_POINTER_SAME, {":d": {"N": str(base_version)}, ":c": {"S": chain.text}})
        if self._rebase_due(chain, len(upserts) + len(removed), total):
            state = await self._state(step_ms, bucket_ms, chain, range(GROUPS))
            for value_id in removed:
                state.pop(value_id, None)
            state.update((value_blocks.value_id(value), value) for value in upserts)
            moved = await self._rebase(step_ms, bucket_ms, version, list(state.values()), condition)
        else:
            moved = await self._append(step_ms, bucket_ms, version, chain, upserts, removed, total, condition)
        if moved:
            await self._touched(step_ms, bucket_ms, upserts)
        return moved

    @staticmethod
    def _rebase_due(chain: Chain, rows: int, total: int) -> bool:
        return len(chain.links) >= MAX_CHAIN or chain.rows + rows > REBASE_FACTOR * max(total, 1)

    async def _rebase(
        self,
        step_ms: int,
        bucket_ms: int,
        version: int,
        values: Sequence[DerivedValue],
        condition: tuple[str, Item],
    ) -> bool:
        """Write ``values`` as a base and commit it under ``condition``."""
        encoded = await self._runner.work(self._encode, step_ms, bucket_ms, values, ())
        await self._write(encoded.items)
        return await self._commit(
            step_ms, bucket_ms, version, encoded.link.text(), encoded.rows, len(values), condition, base=True
        )

    async def _append(
        self,
        step_ms: int,
        bucket_ms: int,
        version: int,
        chain: Chain,
        upserts: Sequence[DerivedValue],
        removals: Sequence[ValueId],
        total: int,
        condition: tuple[str, Item],
    ) -> bool:
        """Write a change and commit it at the end of ``chain`` under ``condition``."""
        encoded = await self._runner.work(self._encode, step_ms, bucket_ms, upserts, removals)
        await self._write(encoded.items)
        links = chain.text if not encoded.items else f"{chain.text} {encoded.link.text()}"
        return await self._commit(
            step_ms, bucket_ms, version, links, chain.rows + encoded.rows, total, condition, base=False
        )

    def _encode(
        self, step_ms: int, bucket_ms: int, upserts: Sequence[DerivedValue], removals: Sequence[ValueId]
    ) -> _Pass:
        """The items of one pass (on a worker thread)."""
        pass_id = self._pass_ids.next()
        expires_at = {"N": str(self._expires_at(step_ms, bucket_ms))}
        items: list[Item] = []
        groups = parts = 0
        for group, (values, removed) in sorted(value_blocks.by_group(upserts, removals).items()):
            blocks: list[Block] = value_blocks.encode(values, removed)
            groups |= 1 << group
            parts = max(parts, len(blocks))
            items += [
                {
                    **block_key(step_ms, group, bucket_ms, pass_id, part),
                    "d": {"B": block.data},
                    "expires_at": expires_at,
                }
                for part, block in enumerate(blocks)
            ]
        return _Pass(Link(pass_id, groups, parts), items, len(upserts) + len(removals))

    async def _write(self, items: list[Item]) -> None:
        """Put a pass's blocks, in parallel batches, under one retry bound (retry.py)."""
        deadline = time.monotonic() + self._table.policy.timeout_s
        await self._runner.batches(
            lambda batch, abort: self._table.write_batch(batch, deadline, abort), items, BATCH_ITEMS
        )

    async def _commit(
        self,
        step_ms: int,
        bucket_ms: int,
        version: int,
        chain: str,
        rows: int,
        total: int,
        condition: tuple[str, Item],
        *,
        base: bool,
    ) -> bool:
        expression, values = condition
        update = (
            "SET derived_version = :v, chain_version = :v, chain = :chain, chain_rows = :rows, value_count = :n, "
            "expires_at = :e"
        )
        if base:
            update += ", full_version = :v"
        return await self._runner.control(
            self._table.update,
            pointer_key(step_ms, bucket_ms),
            update,
            {
                ":v": {"N": str(version)},
                ":chain": {"S": chain},
                ":rows": {"N": str(rows)},
                ":n": {"N": str(total)},
                ":e": {"N": str(self._expires_at(step_ms, bucket_ms))},
                **values,
            },
            expression,
        )

    async def _touched(self, step_ms: int, bucket_ms: int, values: Sequence[DerivedValue]) -> None:
        if step_ms == MINUTE_MS and values:
            await self._entities.touch(values, bucket_ms, self._pass_ids.next())

    # -- reading values ----------------------------------------------------------------

    async def _state(
        self,
        step_ms: int,
        bucket_ms: int,
        chain: Chain,
        groups: Iterable[int],
        wanted: Callable[[str], bool] | None = None,
    ) -> State:
        """A bucket's values of ``groups`` as its ``chain`` has them."""
        states = await self._states(step_ms, {bucket_ms: chain}, list(groups), wanted)
        return states[bucket_ms]

    async def _states(
        self,
        step_ms: int,
        chains: dict[int, Chain],
        groups: list[int],
        wanted: Callable[[str], bool] | None,
    ) -> dict[int, State]:
        """The values of ``groups`` of each bucket of ``chains``.

        Minutes: one Query per group over the buckets' range. A minute is rarely stored
        whole again once it has values (a whole put stores its difference), so its
        partition holds little besides its chain, and a Query bills the bytes it reads
        where BatchGetItem rounds every item up to 4 KB. Hours are stored whole every
        minute while they last and rebased every few, so their superseded blocks outnumber
        the live ones: they are read by key, in parallel BatchGetItem calls."""
        if not chains:
            return {}
        if step_ms == MINUTE_MS:
            low, high = f"{min(chains):013d}", f"{max(chains):013d}$"
            queries = [
                functools.partial(
                    self._table.query,
                    KeyConditionExpression="pk = :pk AND sk BETWEEN :lo AND :hi",
                    ExpressionAttributeValues={
                        ":pk": block_key(step_ms, group, 0, "", 0)["pk"],
                        ":lo": {"S": low},
                        ":hi": {"S": high},
                    },
                )
                for group in groups
            ]
            items = [item for found in await self._runner.gather(queries) for item in found]
        else:
            keys = [
                key
                for bucket, chain in chains.items()
                for link in chain.links
                for key in link.keys(step_ms, bucket, groups)
            ]
            items = await self._get_many(keys)
        return await self._runner.work(_apply_chains, chains, items, wanted)

    async def derived(
        self,
        metric: str,
        step_ms: int,
        start_ms: int,
        end_ms: int,
        service: str | None,
        endpoint: str | None,
        region: str | None = None,
    ) -> list[DerivedValue]:
        def wanted(value: DerivedValue) -> bool:
            return (
                (service is None or value.service == service)
                and (endpoint is None or value.endpoint == endpoint)
                and (value.merged if region is None else value.region == region)
            )

        values = await self._metric_values(metric, step_ms, start_ms, end_ms)
        found = [value for value in values if wanted(value)]
        found.sort(key=_value_order)
        return found

    async def endpoint_reductions(
        self, metric: str, step_ms: int, start_ms: int, end_ms: int, service: str, region: str | None
    ) -> tuple[dict[str, Totals], dict[str, float]]:
        """``totals_of`` and ``latest_of`` of ``derived(...)`` for every endpoint of ``service``:
        both come of the same read, so both are made each time."""
        values = await self.derived(metric, step_ms, start_ms, end_ms, service, None, region)
        return totals_of(values), latest_of(values)

    async def _metric_values(self, metric: str, step_ms: int, start_ms: int, end_ms: int) -> list[DerivedValue]:
        """Every value of ``metric`` in the buckets starting in ``[start_ms, end_ms]``."""
        low, high = max(start_ms, 0), min(end_ms, MAX_START_MS - 1)
        if low > high:
            return []
        now = self._now()
        query = functools.partial(
            self._table.query,
            KeyConditionExpression="pk = :pk AND sk BETWEEN :lo AND :hi",
            FilterExpression="expires_at > :now",
            ExpressionAttributeValues={
                ":pk": pointer_key(step_ms, 0)["pk"], ":lo": {"S": f"{low:013d}"}, ":hi": {"S": f"{high:013d}"},
                ":now": now,
            },
            ProjectionExpression="sk, derived_version, full_version, chain_version, chain, chain_rows",
        )  # fmt: skip
        chains: dict[int, Chain] = {}
        older: dict[int, int] = {}
        for pointer in await self._runner.control(query):
            bucket = int(pointer["sk"]["S"])
            chain = chain_of(pointer)
            if chain is not None:
                chains[bucket] = chain
            elif "derived_version" in pointer:
                older[bucket] = legacy_values.kept_from(pointer)
        states = await self._states(step_ms, chains, [value_blocks.group_of(metric)], metric.__eq__)
        found = [value for state in states.values() for value in state.values()]
        return found + await legacy_values.metric_values(self._table, self._runner, metric, step_ms, older, now)

    async def bucket_values(self, step_ms: int, bucket_ms: int) -> list[DerivedValue]:
        if not 0 <= bucket_ms < MAX_START_MS:
            return []
        pointer = await self._runner.control(self._table.get, pointer_key(step_ms, bucket_ms), None)
        if pointer is None or int(pointer["expires_at"]["N"]) <= int(self._clock()):
            return []
        chain = chain_of(pointer)
        if chain is None:
            if "derived_version" not in pointer:
                return []
            found = await legacy_values.bucket_values(self._table, self._runner, step_ms, bucket_ms, pointer)
        else:
            found = list((await self._state(step_ms, bucket_ms, chain, range(GROUPS))).values())
        found.sort(key=_value_order)
        return found

    async def latest_bucket(self, step_ms: int, before_ms: int) -> int | None:
        if before_ms <= 0:
            return None
        return await self._runner.control(self._latest_bucket, step_ms, min(before_ms, MAX_START_MS))

    def _latest_bucket(self, step_ms: int, before_ms: int) -> int | None:
        pages = self._table.pages(
            KeyConditionExpression="pk = :pk AND sk < :before",
            FilterExpression="value_count > :zero AND expires_at > :now",
            ExpressionAttributeValues={
                ":pk": pointer_key(step_ms, 0)["pk"], ":before": {"S": f"{before_ms:013d}"},
                ":zero": {"N": "0"}, ":now": self._now(),
            },
            ProjectionExpression="sk",
            ScanIndexForward=False,  # newest first: usually the first page answers
        )  # fmt: skip
        for page in pages:
            if page.get("Items"):
                return int(page["Items"][0]["sk"]["S"])
        return None

    async def entities(self, since_ms: int) -> list[Entity]:
        return await self._entities.since(since_ms)


def _apply_chains(
    chains: dict[int, Chain], items: list[Item], wanted: Callable[[str], bool] | None
) -> dict[int, State]:
    """Each bucket's chain applied to an empty state, from the blocks in ``items`` (on a
    worker thread). A block its chain names that is missing expired (or was never
    committed, which a chain rules out): the bucket reads as what is left."""
    data: dict[tuple[int, str], list[bytes]] = {}
    for item in items:
        bucket, pass_id, _ = item["sk"]["S"].split("#")
        data.setdefault((int(bucket), pass_id), []).append(item["d"]["B"])
    states: dict[int, State] = {}
    for bucket, chain in chains.items():
        state: State = {}
        for link in chain.links:
            value_blocks.apply(state, data.get((bucket, link.pass_id), []), bucket, wanted)
        states[bucket] = state
    return states
