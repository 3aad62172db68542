"""The rules in force, and their reload (on SIGHUP) without stopping requests.

Request handlers read ``holder.current`` once per request and use that RuleSet to the end;
a reload builds a whole new RuleSet and swaps one reference, so a request sees the old
rules or the new ones, never a mix. A broken file leaves the old rules in force.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

from receiver.rules.errors import RuleError
from receiver.rules.loader import load_rules
from receiver.rules.ruleset import RuleSet

log = logging.getLogger(__name__)


class RuleHolder:
    """The current RuleSet of a rules directory."""

    def __init__(self, directory: Path, rules: RuleSet | None = None) -> None:
        """Loads ``directory`` now (RuleError if broken) unless ``rules`` is given."""
        self.directory = Path(directory)
        self._current = rules if rules is not None else load_rules(self.directory)
        self.last_error: RuleError | None = None
        """Why the last reload failed; None after a successful one."""
        self._lock: asyncio.Lock | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def current(self) -> RuleSet:
        return self._current

    def reload(self) -> RuleError | None:
        """Load the directory again; on failure keep the old rules and return (and log) why."""
        try:
            rules = load_rules(self.directory)
        except RuleError as error:
            return self._failed(error)
        self._swap(rules)
        return None

    async def reload_async(self) -> RuleError | None:
        """``reload`` with the file reading and parsing off the event loop.

        Reloads run one at a time, in the order asked, so the last SIGHUP's files win.
        """
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            try:
                rules = await asyncio.to_thread(load_rules, self.directory)
            except RuleError as error:
                return self._failed(error)
            self._swap(rules)
            return None

    def install_sighup(
        self, loop: asyncio.AbstractEventLoop | None = None, *, then: Callable[[], Awaitable[object]] | None = None
    ) -> Callable[[], None]:
        """Reload on SIGHUP in ``loop`` (the running one by default); returns the undo.

        ``then``: what else reloads on SIGHUP, after the rules (the alarm rules, which are
        checked against them). A signal has one handler, so it is chained here.
        """
        loop = loop or asyncio.get_running_loop()

        async def reload_all() -> None:
            await self.reload_async()
            if then is not None:
                try:
                    await then()
                except Exception:  # a bug: logged here, as nobody awaits this task
                    log.exception("SIGHUP: reloading after the rules failed")

        def on_hangup() -> None:
            log.info("SIGHUP: reloading rules from %s", self.directory)
            task = loop.create_task(reload_all())
            self._tasks.add(task)  # keep a reference until it is done
            task.add_done_callback(self._tasks.discard)

        loop.add_signal_handler(signal.SIGHUP, on_hangup)

        def undo() -> None:
            loop.remove_signal_handler(signal.SIGHUP)

        return undo

    def _swap(self, rules: RuleSet) -> None:
        self._current = rules
        self.last_error = None
        log.info(
            "rules reloaded from %s: %d metrics from %d files", self.directory, len(rules.metrics), len(rules.files)
        )

    def _failed(self, error: RuleError) -> RuleError:
        self.last_error = error
        log.error("rules not reloaded, the previous rules stay in force: %s", error)
        return error
