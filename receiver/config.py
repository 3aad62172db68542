"""`serve` settings: command-line options with environment-variable fallbacks."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from receiver.alarms.settings import AlarmConfigError, AlarmSettings, add_alarm_arguments, alarm_settings
from receiver.exporters.otlp import OtlpExportSettings, export_url_problem
from receiver.firehose.body import DEFAULT_STALL_TIMEOUT_S
from receiver.firehose.envelope import MAX_BODY_BYTES
from receiver.formats import FORMATS
from receiver.inventory.settings import (
    InventoryConfigError,
    InventorySettings,
    add_inventory_arguments,
    inventory_settings,
)
from receiver.model import DEFAULT_SETTLE_S
from receiver.store.base import DEFAULT_HOUR_RETENTION_DAYS, DEFAULT_MINUTE_RETENTION_DAYS

REPOSITORY_RULES = Path(__file__).resolve().parent.parent / "rules"
DEFAULT_STORE = "sqlite:///./data/metrics.db"
DEFAULT_IDLE_TIMEOUT_S = 130.0
"""Longer than the idle timeout of the load balancer in front (the stacks' ALB: 120 s), so the
receiver never closes a pooled connection just as the load balancer sends on it (a 502)."""
DEFAULT_MAX_CONNECTIONS = 256
"""Far more than Firehose's concurrent deliveries plus dashboards and health checks, and well
below the usual limit of 1,024 open files, which the store, the rules worker and outgoing
connections (DynamoDB, OTLP, alarm webhooks) share."""


DEFAULT_METRIC_UPDATE_PRICE = 0.003
"""USD per 1,000 metric updates of a CloudWatch metric stream in US East (N. Virginia), as
Amazon CloudWatch pricing lists it; prices vary by region."""


class ConfigError(ValueError):
    """A wrong option value; ``str(e)`` is one sentence naming it and what to put."""


@dataclass(frozen=True, slots=True)
class ServeConfig:
    host: str = "0.0.0.0"
    port: int = 12801
    access_keys: tuple[str, ...] = ()
    allow_unauthenticated: bool = False
    """Serve without access keys, accepting every delivery; without it an app needs a key."""
    store_url: str = DEFAULT_STORE
    rules_dir: Path = REPOSITORY_RULES
    tls_cert: Path | None = None
    tls_key: Path | None = None
    record_format: str | None = None
    """A fixed stream format, or None to detect it per record."""
    max_inflight_bytes: int = 4 * MAX_BODY_BYTES
    shutdown_timeout_s: float = 60.0
    read_timeout_s: float = DEFAULT_STALL_TIMEOUT_S
    """A connection's request headers must be complete this long after it opens or after the
    request's first byte; a body may pause no longer than this."""
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S
    """A kept-alive connection with no request for this long is closed."""
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    """Open connections past this are answered 503 and closed at once."""
    accept_log_interval_s: float = 10.0
    """At most one line per interval about connections refused or failing to be accepted."""
    log_level: str = "INFO"
    minute_retention_days: float = DEFAULT_MINUTE_RETENTION_DAYS
    hour_retention_days: float = DEFAULT_HOUR_RETENTION_DAYS
    derive_interval_s: float = 2.0
    """How long the deriver waits before trying again when the store failed, and the first
    wait of a bucket whose derivation failed (it doubles)."""
    hour_interval_s: float = 60.0
    """Time between two recomputations of the changed hours."""
    prune_interval_s: float = 600.0
    create_store: bool = False
    """Create the DynamoDB store's table when it does not exist (SQLite always creates its file)."""
    metrics_settle_s: float = DEFAULT_SETTLE_S
    """/metrics exposes the newest minute that ended at least this long ago."""
    otlp_export: OtlpExportSettings | None = None
    """Push completed minutes to this OTLP/HTTP endpoint; None: no export."""
    alarms: AlarmSettings | None = None
    """Alarm rules and where notifications go (receiver/alarms), evaluated on the minutes
    complete by ``metrics_settle_s``; None: no alarms. ``serve`` always sets it (by default
    to the repository's alarms/)."""
    inventory: InventorySettings | None = None
    """The table inventory poller (receiver/inventory); None: off."""
    metric_update_price: float = DEFAULT_METRIC_UPDATE_PRICE
    """What the metric stream costs per 1,000 metric updates, in USD (the Pipeline page's estimate)."""


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """The contract's serve options; defaults come from the environment in ``serve_config``."""
    parser.add_argument("--host", help="address to listen on (RECEIVER_HOST, default 0.0.0.0)")
    parser.add_argument("--port", help="port to listen on (RECEIVER_PORT, default 12801)")
    parser.add_argument(
        "--access-key",
        action="append",
        dest="access_keys",
        metavar="KEY",
        help="a Firehose access key to accept; repeat for several "
        "(RECEIVER_ACCESS_KEYS, comma-separated); at least one is required unless --allow-unauthenticated",
    )
    parser.add_argument(
        "--allow-unauthenticated",
        action="store_true",
        default=None,
        help="serve without an access key, accepting every delivery (RECEIVER_ALLOW_UNAUTHENTICATED=true)",
    )
    parser.add_argument("--store", help=f"store URL (RECEIVER_STORE, default {DEFAULT_STORE})")
    parser.add_argument("--rules", help="rules directory (RECEIVER_RULES, default the repository's rules/)")
    parser.add_argument("--tls-cert", help="serve HTTPS with this certificate chain (RECEIVER_TLS_CERT)")
    parser.add_argument("--tls-key", help="the certificate's private key (RECEIVER_TLS_KEY)")
    parser.add_argument(
        "--format",
        dest="record_format",
        help=f"fix the record format to one of {', '.join(FORMATS)} (RECEIVER_FORMAT, default: detect per record)",
    )
    parser.add_argument(
        "--max-inflight-mib",
        help="request bodies held in memory at once before answering 503 "
        "(RECEIVER_MAX_INFLIGHT_MIB, default 4 of Firehose's largest deliveries)",
    )
    parser.add_argument(
        "--shutdown-timeout",
        help="seconds to finish in-flight requests on SIGTERM (RECEIVER_SHUTDOWN_TIMEOUT, default 60)",
    )
    parser.add_argument(
        "--read-timeout",
        metavar="S",
        help="seconds a client may take to send a request's headers, and may pause while "
        "sending its body (RECEIVER_READ_TIMEOUT, default 60)",
    )
    parser.add_argument(
        "--idle-timeout",
        metavar="S",
        help="seconds a kept-alive connection may wait for its next request; keep it above the "
        "idle timeout of a load balancer in front (RECEIVER_IDLE_TIMEOUT, default 130)",
    )
    parser.add_argument(
        "--max-connections",
        metavar="N",
        help="open connections at most; past it new ones are answered 503 and closed "
        "(RECEIVER_MAX_CONNECTIONS, default 256)",
    )
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR (RECEIVER_LOG_LEVEL, default INFO)")
    parser.add_argument(
        "--create-store",
        action="store_true",
        default=None,
        help="create the dynamodb:// store's table if it does not exist (RECEIVER_CREATE_STORE=true)",
    )
    parser.add_argument(
        "--metrics-settle-seconds",
        help="seconds after a minute ends before /metrics shows it and OTLP exports it "
        "(RECEIVER_METRICS_SETTLE_SECONDS, default 300)",
    )
    parser.add_argument(
        "--retention-minutes-days",
        help="days to keep minute samples and values (RECEIVER_RETENTION_MINUTES_DAYS, default 7)",
    )
    parser.add_argument(
        "--retention-hours-days",
        help="days to keep hourly values (RECEIVER_RETENTION_HOURS_DAYS, default 90)",
    )
    parser.add_argument(
        "--export-otlp",
        metavar="URL",
        help="push each completed minute's metrics to this OTLP/HTTP metrics URL, "
        "e.g. http://collector:4318/v1/metrics (RECEIVER_EXPORT_OTLP, default: no export)",
    )
    parser.add_argument(
        "--metric-update-price",
        metavar="USD",
        help="what the metric stream costs per 1,000 metric updates, for the Pipeline page's estimate "
        "(RECEIVER_METRIC_UPDATE_PRICE, default 0.003: US East (N. Virginia))",
    )
    add_alarm_arguments(parser)
    add_inventory_arguments(parser)


def serve_config(args: argparse.Namespace, env: Mapping[str, str] = os.environ) -> ServeConfig:
    """Merge options over environment variables over defaults; raise ConfigError on a bad value."""
    defaults = ServeConfig()

    def pick(option: object, variable: str) -> str | None:
        if option is not None:
            return str(option)
        value = env.get(variable)
        return value if value not in (None, "") else None

    host = pick(args.host, "RECEIVER_HOST") or defaults.host
    port = _integer(pick(args.port, "RECEIVER_PORT"), "--port (RECEIVER_PORT)", defaults.port, 0, 65535)

    # HTTP strips the spaces around a header value, so a key's own spaces could never match.
    if args.access_keys:
        keys = tuple(k.strip() for k in args.access_keys)
        if not all(keys):
            raise ConfigError("--access-key must not be empty; give the key Firehose sends")
    else:
        listed = env.get("RECEIVER_ACCESS_KEYS", "")
        keys = tuple(k.strip() for k in listed.split(",")) if listed.strip() else ()
        if not all(keys):
            raise ConfigError(
                f"RECEIVER_ACCESS_KEYS {listed!r} has an empty entry; give the keys separated by "
                "single commas, with nothing empty between them"
            )
    allow_unauthenticated = _boolean(
        pick(args.allow_unauthenticated, "RECEIVER_ALLOW_UNAUTHENTICATED"), "RECEIVER_ALLOW_UNAUTHENTICATED"
    )
    if (problem := access_problem(keys, allow_unauthenticated)) is not None:
        raise ConfigError(problem)

    store_url = pick(args.store, "RECEIVER_STORE") or defaults.store_url
    rules = pick(args.rules, "RECEIVER_RULES")
    rules_dir = Path(rules) if rules else defaults.rules_dir
    if not rules_dir.is_dir():
        raise ConfigError(f"--rules (RECEIVER_RULES) {rules_dir} is not a directory; give a rules directory")

    cert = pick(args.tls_cert, "RECEIVER_TLS_CERT")
    key = pick(args.tls_key, "RECEIVER_TLS_KEY")
    if bool(cert) != bool(key):
        raise ConfigError("--tls-cert and --tls-key go together; give both or neither")

    record_format = pick(args.record_format, "RECEIVER_FORMAT")
    if record_format is not None and record_format not in FORMATS:
        raise ConfigError(
            f"--format (RECEIVER_FORMAT) {record_format!r} is not a stream format; use one of {', '.join(FORMATS)}"
        )

    inflight_mib = _integer(
        pick(args.max_inflight_mib, "RECEIVER_MAX_INFLIGHT_MIB"),
        "--max-inflight-mib (RECEIVER_MAX_INFLIGHT_MIB)",
        0,
        1,
        1 << 20,
    )
    shutdown = pick(args.shutdown_timeout, "RECEIVER_SHUTDOWN_TIMEOUT")
    try:
        shutdown_s = float(shutdown) if shutdown is not None else defaults.shutdown_timeout_s
    except ValueError:
        shutdown_s = -1.0
    if not 0 <= shutdown_s <= 3600:
        raise ConfigError("--shutdown-timeout (RECEIVER_SHUTDOWN_TIMEOUT) must be seconds from 0 to 3600")

    read_timeout_s = _seconds(
        pick(args.read_timeout, "RECEIVER_READ_TIMEOUT"),
        "--read-timeout (RECEIVER_READ_TIMEOUT)",
        defaults.read_timeout_s,
    )
    idle_timeout_s = _seconds(
        pick(args.idle_timeout, "RECEIVER_IDLE_TIMEOUT"),
        "--idle-timeout (RECEIVER_IDLE_TIMEOUT)",
        defaults.idle_timeout_s,
    )
    max_connections = _integer(
        pick(args.max_connections, "RECEIVER_MAX_CONNECTIONS"),
        "--max-connections (RECEIVER_MAX_CONNECTIONS)",
        defaults.max_connections,
        1,
        1_000_000,
    )

    level = (pick(args.log_level, "RECEIVER_LOG_LEVEL") or defaults.log_level).upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError("--log-level (RECEIVER_LOG_LEVEL) must be DEBUG, INFO, WARNING or ERROR")

    minute_days = _days(
        pick(args.retention_minutes_days, "RECEIVER_RETENTION_MINUTES_DAYS"),
        "--retention-minutes-days (RECEIVER_RETENTION_MINUTES_DAYS)",
        defaults.minute_retention_days,
    )
    hour_days = _days(
        pick(args.retention_hours_days, "RECEIVER_RETENTION_HOURS_DAYS"),
        "--retention-hours-days (RECEIVER_RETENTION_HOURS_DAYS)",
        defaults.hour_retention_days,
    )

    export_url = pick(args.export_otlp, "RECEIVER_EXPORT_OTLP")
    if export_url is not None and (problem := export_url_problem(export_url)) is not None:
        raise ConfigError(
            f"--export-otlp (RECEIVER_EXPORT_OTLP) {export_url!r} {problem}; "
            "give the full OTLP/HTTP metrics URL, e.g. http://collector:4318/v1/metrics"
        )

    create_store = _boolean(pick(args.create_store, "RECEIVER_CREATE_STORE"), "RECEIVER_CREATE_STORE")
    settle = pick(args.metrics_settle_seconds, "RECEIVER_METRICS_SETTLE_SECONDS")
    try:
        settle_s = float(settle) if settle is not None else defaults.metrics_settle_s
    except ValueError:
        settle_s = -1.0
    if not 0 <= settle_s <= 3600:
        raise ConfigError("--metrics-settle-seconds (RECEIVER_METRICS_SETTLE_SECONDS) must be seconds from 0 to 3600")

    price = pick(args.metric_update_price, "RECEIVER_METRIC_UPDATE_PRICE")
    try:
        update_price = float(price) if price is not None else defaults.metric_update_price
    except ValueError:
        update_price = -1.0
    if not 0 <= update_price <= 1:
        raise ConfigError(
            f"--metric-update-price (RECEIVER_METRIC_UPDATE_PRICE) {price!r} must be US dollars per 1,000 "
            "metric updates, from 0 to 1 (0.003 in US East)"
        )

    def env_list(name: str) -> tuple[str, ...]:
        return tuple(v.strip() for v in env.get(name, "").split(",") if v.strip())

    try:
        alarms = alarm_settings(args, pick, env_list)
    except AlarmConfigError as exc:
        raise ConfigError(str(exc)) from None
    try:
        inventory = inventory_settings(args, pick, env_list)
    except InventoryConfigError as exc:
        raise ConfigError(str(exc)) from None

    return ServeConfig(
        host=host,
        port=port,
        access_keys=keys,
        allow_unauthenticated=allow_unauthenticated,
        store_url=store_url,
        rules_dir=rules_dir,
        tls_cert=Path(cert) if cert else None,
        tls_key=Path(key) if key else None,
        record_format=record_format,
        max_inflight_bytes=inflight_mib * 1024 * 1024 if inflight_mib else defaults.max_inflight_bytes,
        shutdown_timeout_s=shutdown_s,
        read_timeout_s=read_timeout_s,
        idle_timeout_s=idle_timeout_s,
        max_connections=max_connections,
        log_level=level,
        minute_retention_days=minute_days,
        hour_retention_days=hour_days,
        create_store=create_store,
        metrics_settle_s=settle_s,
        # A minute is complete for the export when it is for /metrics: one setting for both.
        otlp_export=OtlpExportSettings(export_url, settle_s=settle_s) if export_url is not None else None,
        alarms=alarms,
        inventory=inventory,
        metric_update_price=update_price,
    )


def access_problem(keys: Sequence[str], allow_unauthenticated: bool) -> str | None:
    """Why these keys cannot serve (one sentence naming the fix), or None: authentication
    fails closed, so no key is an error unless serving without one was asked for."""
    if not all(key.strip() for key in keys):
        return "an access key must not be empty; give the key Firehose sends"
    if not keys and not allow_unauthenticated:
        return (
            "no access key is configured; give one with --access-key KEY (or RECEIVER_ACCESS_KEYS), "
            "or pass --allow-unauthenticated (RECEIVER_ALLOW_UNAUTHENTICATED=true) to accept every delivery"
        )
    return None


def _boolean(text: str | None, name: str) -> bool:
    """An on/off setting: absent is off; true/false or 1/0 in any case, else ConfigError."""
    if text is None:
        return False
    if text.lower() not in ("true", "false", "1", "0"):
        raise ConfigError(f"{name} {text!r} must be true or false")
    return text.lower() in ("true", "1")


def _seconds(text: str | None, name: str, default: float) -> float:
    return _positive(text, name, default, 3600, "seconds above 0 and at most 3600")


def _days(text: str | None, name: str, default: float) -> float:
    return _positive(text, name, default, 3650, "a number of days above 0 and at most 3650")


def _positive(text: str | None, name: str, default: float, high: float, wanted: str) -> float:
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= high:
        raise ConfigError(f"{name} {text!r} must be {wanted}")
    return value


def _integer(text: str | None, name: str, default: int, low: int, high: int) -> int:
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ConfigError(f"{name} {text!r} is not a whole number from {low} to {high}")
    return value
