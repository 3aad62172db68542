"""The alarms of one receiver: rules loaded and checked, evaluator and notifier running.

The alarm rules reload with the metric rules on SIGHUP (``reload_async``): the new files
are checked against the metric rules then in force, and a broken file keeps the old alarm
rules with one log line naming the file and the reason, as a broken metric rule file does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp

from receiver.alarms.channels import Channel, SlackChannel, SnsChannel, WebhookChannel
from receiver.alarms.counters import AlarmCounters
from receiver.alarms.evaluator import AlarmEvaluator
from receiver.alarms.loader import check_metrics, load_alarms
from receiver.alarms.notifier import Notifier, RetryPolicy
from receiver.alarms.rules import AlarmRule
from receiver.alarms.settings import AlarmSettings
from receiver.derive.completeness import Completeness
from receiver.rules.errors import RuleError
from receiver.store.base import Store

log = logging.getLogger("receiver.alarms")

DRAIN_TIMEOUT_S = 10.0
"""On stop, notifications still queued get this long to go out."""


class Alarms:
    def __init__(
        self,
        settings: AlarmSettings,
        store: Store,
        metric_scopes: Mapping[str, str],
        *,
        settle_s: float,
        interval_s: float = 60.0,
        retry: RetryPolicy = RetryPolicy(),
        clock: Callable[[], float] = time.time,
        sns_client: Any = None,
        completeness: Completeness | None = None,
    ) -> None:
        """Load the rules (RuleError with file and line when one is broken)."""
        self.settings = settings
        self.rules = load_alarms(settings.directory) if settings.directory is not None else []
        check_metrics(self.rules, dict(metric_scopes))
        self.counters = AlarmCounters()
        self.notifier = Notifier([], self.counters, retry)
        self.evaluator = AlarmEvaluator(
            store, self.rules, self.notifier, self.counters, settle_s=settle_s, interval_s=interval_s, clock=clock,
            completeness=completeness,
        )  # fmt: skip
        self._sns_client = sns_client
        self._session: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._reloading: asyncio.Lock | None = None

    def reload(self, metric_scopes: Mapping[str, str]) -> RuleError | None:
        """Load the alarm files again, checked against ``metric_scopes`` (the metric rules in
        force); on failure keep the old alarm rules and return (and log) why."""
        try:
            rules = self._load(metric_scopes)
        except RuleError as error:
            return self._not_reloaded(error)
        self._swap(rules)
        return None

    async def reload_async(self, metric_scopes: Mapping[str, str]) -> RuleError | None:
        """``reload`` with the files read off the event loop; reloads run one at a time."""
        if self._reloading is None:
            self._reloading = asyncio.Lock()
        async with self._reloading:
            try:
                rules = await asyncio.to_thread(self._load, metric_scopes)
            except RuleError as error:
                return self._not_reloaded(error)
            self._swap(rules)
            return None

    def _load(self, metric_scopes: Mapping[str, str]) -> list[AlarmRule]:
        directory = self.settings.directory
        rules = load_alarms(directory) if directory is not None else []
        check_metrics(rules, dict(metric_scopes))
        return rules

    def _swap(self, rules: list[AlarmRule]) -> None:
        # The evaluator reads its rules once per tick: a tick under way ends with the old ones.
        self.rules = rules
        self.evaluator.rules = list(rules)
        log.info("alarm rules reloaded", extra={"rules": len(rules), "directory": str(self.settings.directory)})

    def _not_reloaded(self, error: RuleError) -> RuleError:
        # str(error) reads "<file>:<line>:<column>: <reason>".
        log.error(f"alarm rules not reloaded, the previous alarm rules stay in force: {error}")
        return error

    async def start(self) -> None:
        channels: list[Channel] = []
        settings = self.settings
        if settings.webhooks or settings.slack_webhook:
            self._session = aiohttp.ClientSession()
            channels += [WebhookChannel(url, self._session) for url in settings.webhooks]
            if settings.slack_webhook:
                channels.append(SlackChannel(settings.slack_webhook, self._session))
        if settings.sns_topic_arn:
            client = self._sns_client or await asyncio.to_thread(_sns_client, settings.sns_region)
            channels.append(SnsChannel(settings.sns_topic_arn, client))
        self.notifier.channels = channels
        log.info("alarms loaded", extra={"rules": len(self.rules), "channels": [c.name for c in channels]})
        self._tasks = [
            asyncio.create_task(self.evaluator.run(), name="alarm-evaluator"),
            asyncio.create_task(self.notifier.run(), name="alarm-notifier"),
        ]

    async def stop(self) -> None:
        evaluator, notifier = self._tasks or (None, None)
        if evaluator is not None:
            evaluator.cancel()
            await asyncio.gather(evaluator, return_exceptions=True)
        if not await self.notifier.drain(DRAIN_TIMEOUT_S):
            log.warning("stopping with alarm notifications not yet delivered")
        if notifier is not None:
            notifier.cancel()
            await asyncio.gather(notifier, return_exceptions=True)
        self._tasks = []
        if self._session is not None:
            await self._session.close()
            self._session = None


def _sns_client(region: str | None) -> Any:
    import boto3

    return boto3.client("sns", region_name=region)
