"""Evaluates the alarm rules on every complete minute, from the store, once per replica tick.

A minute is complete once all its expected series arrived, or at the latest once it ended
``settle_s`` ago (receiver/derive/completeness.py; /metrics and the OTLP export use the same
notion); a minute found complete wakes the evaluator at once. Each tick evaluates the complete minutes
since the last tick in order (at start, the last ``catch_up_minutes``), skipping minutes
for which the store holds no values at all (the stream or the receiver stopped: alarms
stay as they are rather than resolving).

For each rule, entity and minute the decision (receiver/alarms/decide.py) is a function of
the stored values and the entity's stored event history. A decision to notify becomes an
event with the next sequence number, written insert-if-absent: the replica whose write
lands notifies, the others find it there and do not. The history is in the store, so a
restarted replica neither repeats what was sent nor forgets an alarm that is on.

A rule with an explanation (``explain``) has it read for the entity when an event is to be
written, over the minutes the reading speaks of, and the text fills the message's ``{cause}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence

from receiver.alarms.counters import AlarmCounters
from receiver.alarms.decide import decide, read
from receiver.alarms.explain import top_key_phrase
from receiver.alarms.notifier import Notifier
from receiver.alarms.rules import AlarmRule
from receiver.derive.completeness import Completeness
from receiver.inventory.documents import SERVICE_PREFIX, TopKeysDocument, top_keys_of
from receiver.model import FIRING, MINUTE_MS, TOP_KEYS, AlarmEvent
from receiver.store.base import Store, StoreError

log = logging.getLogger("receiver.alarms")

DEFAULT_CATCH_UP_MINUTES = 10
Entity = tuple[str, str | None]


class AlarmEvaluator:
    def __init__(
        self,
        store: Store,
        rules: Sequence[AlarmRule],
        notifier: Notifier,
        counters: AlarmCounters,
        *,
        settle_s: float,
        interval_s: float = 60.0,
        catch_up_minutes: int = DEFAULT_CATCH_UP_MINUTES,
        clock: Callable[[], float] = time.time,
        completeness: Completeness | None = None,
    ) -> None:
        """``completeness`` says which minutes are complete (receiver/derive/completeness.py);
        without it, those that ended ``settle_s`` ago."""
        self.rules = list(rules)
        self._store = store
        self._notifier = notifier
        self._counters = counters
        self._settle_s = settle_s
        self._interval_s = interval_s
        self._catch_up = catch_up_minutes
        self._clock = clock
        self._evaluated: int | None = None  # the last minute evaluated by this process
        self._completeness = completeness if completeness is not None else Completeness(settle_s, clock)
        self._wake = asyncio.Event()
        # A minute complete before its settle time is evaluated at once, not at the next tick.
        self._completeness.on_complete(self._wake.set)

    async def run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.tick()
            except StoreError as exc:
                log.warning("alarm evaluation failed, will retry", extra={"error": str(exc)})
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel (gh-86296).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval_s):
                    await self._wake.wait()

    async def tick(self) -> list[AlarmEvent]:
        """Evaluate every complete minute not evaluated yet; the events this replica wrote."""
        rules = self.rules  # one set of rules for the whole tick, though a reload swaps them
        if not rules:
            return []
        last = self._completeness.latest_complete_minute(int(self._clock() * 1000))
        first = last - self._catch_up * MINUTE_MS if self._evaluated is None else self._evaluated + MINUTE_MS
        minutes = [m for m in range(first, last + 1, MINUTE_MS) if await self._has_values(m)]
        written: list[AlarmEvent] = []
        if minutes:
            heads = {event.key: event for event in await self._store.alarm_heads()}
            longest_silence = max(rule.silence for rule in rules)
            last_firing: dict[tuple[str, str, str], int] = {}
            for event in await self._store.alarm_events(minutes[0] - longest_silence * MINUTE_MS):
                if event.kind == FIRING:
                    last_firing[event.key] = max(event.minute_ms, last_firing.get(event.key, event.minute_ms))
            for rule in rules:
                written += await self._evaluate_rule(rule, minutes, heads, last_firing)
        self._evaluated = max(last, self._evaluated or last)
        return written

    async def _has_values(self, minute_ms: int) -> bool:
        return await self._store.latest_bucket(MINUTE_MS, minute_ms + 1) == minute_ms

    async def _evaluate_rule(
        self,
        rule: AlarmRule,
        minutes: list[int],
        heads: dict[tuple[str, str, str], AlarmEvent],
        last_firing: dict[tuple[str, str, str], int],
    ) -> list[AlarmEvent]:
        lookback = rule.period - 1 + rule.expression.lookback_minutes
        values = await self._values(rule, minutes[0] - lookback * MINUTE_MS, minutes[-1])
        # An entity with an alarm on is evaluated even without values, so it can resolve.
        entities = set(values) | {
            (head.service, head.endpoint) for head in heads.values() if head.rule == rule.name and head.kind == FIRING
        }
        written: list[AlarmEvent] = []
        contested: set[tuple[str, str, str]] = set()
        for minute_ms in minutes:
            for service, endpoint in sorted(entities, key=lambda e: (e[0], e[1] or "")):
                key = (rule.name, service, endpoint or "")
                if key in contested:
                    continue
                reading = read(rule, values.get((service, endpoint), {}), minute_ms)
                head = heads.get(key)
                kind = decide(rule, minute_ms, reading, head, last_firing.get(key))
                if kind is None:
                    continue
                cause = await self._explain(rule, service, endpoint, reading.minutes)
                event = AlarmEvent(
                    rule=rule.name, service=service, endpoint=endpoint, seq=(head.seq + 1) if head else 1,
                    kind=kind, minute_ms=minute_ms, value=reading.value, threshold=rule.threshold,
                    message=rule.render(service, endpoint, reading.value, cause), created_ms=int(self._clock() * 1000),
                )  # fmt: skip
                if not await self._store.put_alarm_event(event):
                    # Another replica wrote this step of the chain first: it notifies. Its
                    # event is read back at the next tick.
                    contested.add(key)
                    continue
                heads[key] = event
                if kind == FIRING:
                    last_firing[key] = minute_ms
                self._counters.event(rule.name, kind)
                log.info(
                    "alarm " + kind,
                    extra={
                        "rule": rule.name,
                        "service": service,
                        "endpoint": endpoint,
                        "value": event.value,
                        "minute_ms": minute_ms,
                    },
                )
                self._notifier.submit(event, rule)
                written.append(event)
        return written

    async def _explain(self, rule: AlarmRule, service: str, endpoint: str | None, minutes: tuple[int, ...]) -> str:
        """The rule's explanation for one entity over ``minutes`` ("" for a rule without one)."""
        if rule.explain is None:
            return ""
        values: dict[str, dict[int, float]] = {}
        for metric in sorted(rule.explain.metrics(rule.scope)):
            found = await self._store.derived(
                metric, MINUTE_MS, min(minutes), max(minutes), service=service, endpoint=endpoint
            )
            values[metric] = {v.time_ms: v.value for v in found if (v.service, v.endpoint) == (service, endpoint)}
        text = rule.explain.explain(rule.scope, values, minutes)
        if rule.explain.names_top_key and endpoint is not None:
            text += top_key_phrase(await self._top_keys(service, endpoint), minutes)
        return text

    async def _top_keys(self, service: str, endpoint: str) -> list[TopKeysDocument]:
        """The most throttled keys the inventory holds for the table or index, in each region."""
        account = service.removeprefix(SERVICE_PREFIX)
        return [
            top_keys_of(item) for item in await self._store.inventory(TOP_KEYS)
            if item.account == account and item.name == endpoint
        ]  # fmt: skip

    async def _values(self, rule: AlarmRule, start_ms: int, end_ms: int) -> dict[Entity, dict[str, dict[int, float]]]:
        """entity -> metric -> minute -> value, for the entities the rule applies to."""
        found: dict[Entity, dict[str, dict[int, float]]] = defaultdict(lambda: defaultdict(dict))
        for metric in sorted(rule.expression.metrics):
            for value in await self._store.derived(metric, MINUTE_MS, start_ms, end_ms):
                name = value.endpoint if rule.scope == "endpoint" else value.service
                if name is None or not rule.applies_to(name):
                    continue
                found[(value.service, value.endpoint)][metric][value.time_ms] = value.value
        return found
