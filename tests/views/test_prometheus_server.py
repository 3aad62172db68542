"""A real Prometheus server scrapes a real receiver: PromQL gives what /api/v1/query gives.

The receiver runs as `python -m receiver serve` fed through its Firehose endpoint with one
minute of every DynamoDB metric; Debian's prometheus binary scrapes it every second, with
its config, data and consoles in a temporary directory. ``running_stack`` is shared with
the Grafana dashboard test.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from receiver.inventory.documents import item_of
from receiver.model import DEFAULT_SETTLE_S, LIMITS, MINUTE_MS, TABLE, Sample, Series
from receiver.server.app import INGEST_PATH
from receiver.store import SQLiteStore
from tests.builders import Delivery, make_sample
from tests.processes import ReceiverProcess, free_port

pytestmark = pytest.mark.slow

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
ACCOUNT = "123456789012"
SERVICE = f"aws-dynamodb::{ACCOUNT}"
TABLES = ("GameScores", "Orders", 'odd"name\\with\nnewline')
"""The last one is no valid DynamoDB name: it checks label escaping through a real parser."""
REPLICATED_TABLE = "Orders"
"""A global table with replicas in us-east-1 and eu-west-1, a stream read by GetRecords,
change data capture to Kinesis and an index being built: one series per region for its
replication metrics, and the "<table>→<region>" and "<table>/<index>" entities."""
INDEX = f"{REPLICATED_TABLE}/ByCustomer"
OPERATIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "GetItem": (),
    "PutItem": (),
    "Query": (),
    "Scan": (),
    "UpdateItem": (),
    "DeleteItem": (),
    "BatchGetItem": (),
    "BatchWriteItem": (),
    "TransactGetItems": (),
    "TransactWriteItems": (),
    "ExecuteStatement": (("Verb", "PartiQLSelect"),),
    "BatchExecuteStatement": (("OperationType", "Read"),),
    "ExecuteTransaction": (("OperationType", "Write"),),
    "GetRecords": (("StreamLabel", "2024-01-01T00:00:00.000"),),
}
"""Every operation the rules name, with the dimension CloudWatch adds to the PartiQL ones and
to GetRecords."""
THROTTLE_CAUSES = ("ProvisionedThroughput", "AccountLimit", "KeyRangeThroughput", "MaxOnDemandThroughput")


# -- Prometheus ------------------------------------------------------------------------


class PrometheusError(RuntimeError):
    """Prometheus did not start, or answered a query with an error."""


class PrometheusServer:
    """Debian's prometheus binary on a free loopback port, everything it writes in ``workdir``."""

    def __init__(self, workdir: Path, target: str, scrape_interval: str = "1s") -> None:
        self.workdir = workdir
        self.target = target
        self.scrape_interval = scrape_interval
        self.proc: subprocess.Popen[bytes] | None = None
        self.base = ""
        self.log_path = workdir / "prometheus.log"

    def start(self, timeout: float = 60) -> PrometheusServer:
        config = self.workdir / "prometheus.yml"
        # JSON is YAML: no YAML writer needed, and the quoting is right.
        config.write_text(
            json.dumps(
                {
                    "global": {"scrape_interval": self.scrape_interval, "scrape_timeout": self.scrape_interval},
                    "scrape_configs": [
                        {
                            "job_name": "receiver",
                            "metrics_path": "/metrics",
                            "static_configs": [{"targets": [self.target]}],
                        }
                    ],
                }
            )
        )
        for _ in range(3):
            port = free_port()
            if self._launch(config, port, timeout):
                return self
        raise PrometheusError(f"prometheus did not start after 3 attempts:\n{self.log_tail()}")

    def _launch(self, config: Path, port: int, timeout: float) -> bool:
        """Start on ``port``; False if the port was taken meanwhile, PrometheusError otherwise."""
        for name in ("consoles", "console_libraries"):
            (self.workdir / name).mkdir(exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                "--storage.tsdb.retention.time=1h",
                f"--web.listen-address=127.0.0.1:{port}",
                # The defaults point into /etc/prometheus; keep every path in the test's directory.
                f"--web.console.templates={self.workdir / 'consoles'}",
                f"--web.console.libraries={self.workdir / 'console_libraries'}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
        )
        log.close()
        self.base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                if "address already in use" in self.log_tail():
                    return False
                raise PrometheusError(f"prometheus exited with {self.proc.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(self.base + "/-/ready", timeout=2) as answer:
                    if answer.status == 200:
                        return True
            time.sleep(0.1)
        self.stop()
        raise PrometheusError(f"prometheus was not ready within {timeout} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def api(self, path: str, **params: str) -> Any:
        """The ``data`` of a Prometheus HTTP API answer; PrometheusError for an error answer."""
        url = f"{self.base}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=10) as answer:
                body = json.load(answer)
        except urllib.error.HTTPError as exc:
            body = json.load(exc)
        if body.get("status") != "success":
            raise PrometheusError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, promql: str) -> list[dict]:
        """An instant query at the current time: its result (a vector, or a scalar as one series)."""
        data = self.api("/api/v1/query", query=promql)
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        return data["result"]

    def query_range(self, promql: str, seconds: int, step: str = "5s") -> list[dict]:
        now = time.time()
        data = self.api("/api/v1/query_range", query=promql, start=str(now - seconds), end=str(now), step=step)
        return data["result"]

    def own_counter(self, name: str) -> float:
        """A counter of Prometheus itself, from its own /metrics (it does not scrape itself here)."""
        with urllib.request.urlopen(self.base + "/metrics", timeout=10) as answer:
            lines = answer.read().decode().splitlines()
        values = [float(line.rsplit(" ", 1)[1]) for line in lines if line.split("{")[0].split(" ")[0] == name]
        if not values:
            raise PrometheusError(f"prometheus does not expose {name}")
        return sum(values)

    def label_values(self, label: str, match: str) -> list[str]:
        return self.api(f"/api/v1/label/{label}/values", **{"match[]": match})

    def wait_for(self, promql: str, ready: Callable[[list[dict]], bool], timeout: float = 60) -> list[dict]:
        """Poll an instant query until ``ready(result)``; fail with the last result past ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(promql)
            if ready(result):
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"{promql} gave {result} for {timeout} s\n{self.log_tail()}")
            time.sleep(0.2)


# -- the receiver and what it is fed ---------------------------------------------------


def exposed_minute_ms(now_s: float) -> int:
    """A minute the receiver exposes now and for minutes to come: complete (ended more than
    the settle time ago), and far from stale."""
    settle_minutes = math.ceil(DEFAULT_SETTLE_S / 60)
    current = int(now_s * 1000) // MINUTE_MS * MINUTE_MS
    return current - (settle_minutes + 2) * MINUTE_MS


def dynamodb_minute(minute_ms: int, tables: tuple[str, ...] = TABLES) -> list[Sample]:
    """One minute of every CloudWatch metric the DynamoDB rules read, distinct values per table."""

    def sample(
        metric: str,
        dims: tuple[tuple[str, str], ...],
        total: float,
        count: float,
        stats: tuple[tuple[str, float], ...] = (),
        region: str = "us-east-1",
    ) -> Sample:
        series = Series(ACCOUNT, region, "AWS/DynamoDB", metric, tuple(sorted(dims)), "Count")
        mean = total / count
        # The account rules read the Maximum: with one datapoint, min = max = the value.
        low, high = (mean / 2, mean * 3) if dims else (mean, mean)
        return make_sample(
            series=series, start_ms=minute_ms, value=total, count=count, low=low, high=high, stats=stats, labels=()
        )

    percentiles = (("p50", 3.0), ("p90", 7.5), ("p95", 9.0), ("p99", 12.25), ("p99.9", 15.5))
    samples = []
    for index, table in enumerate(tables, start=1):
        t = (("TableName", table),)
        samples += [
            sample("ConsumedReadCapacityUnits", t, 600.0 * index, 60),
            sample("ConsumedWriteCapacityUnits", t, 120.0 * index, 30),
            sample("ProvisionedReadCapacityUnits", t, 100.0 * index, 1),
            sample("ProvisionedWriteCapacityUnits", t, 50.0 * index, 1),
            sample("TimeToLiveDeletedItemCount", t, 3.0 * index, 1),
            sample("ReadThrottleEvents", t, 2.0 * index, 2),
            sample("WriteThrottleEvents", t, 1.0 * index, 1),
            sample("ConditionalCheckFailedRequests", t, 4.0 * index, 4),
            sample("TransactionConflict", t, 1.0 * index, 1),
        ]
        for operation, extra in OPERATIONS.items():
            op = (*t, ("Operation", operation), *extra)
            scaled = tuple((name, v * index) for name, v in percentiles)  # within [min, max]
            samples.append(sample("SuccessfulRequestLatency", op, 55.0 * index, 10, scaled))
            samples.append(sample("ThrottledRequests", op, 1.0 * index, 1))
            samples.append(sample("SystemErrors", op, 1.0 * index, 1))
        for operation in ("Query", "Scan", "ExecuteStatement"):
            op = (*t, ("Operation", operation), *OPERATIONS[operation])
            samples.append(sample("ReturnedItemCount", op, 25.0 * index, 5))
        for side in ("Read", "Write"):
            for cause in THROTTLE_CAUSES:
                samples.append(sample(f"{side}{cause}ThrottleEvents", t, 1.0 * index, 1))
        if table == REPLICATED_TABLE:
            samples += _replicated_table_samples(sample, t)
    for metric, value in (
        ("AccountMaxReads", 80000.0),
        ("AccountMaxWrites", 80000.0),
        ("AccountMaxTableLevelReads", 40000.0),
        ("AccountMaxTableLevelWrites", 40000.0),
        ("AccountProvisionedReadCapacityUtilization", 1.5),
        ("AccountProvisionedWriteCapacityUtilization", 0.75),
        ("MaxProvisionedTableReadCapacityUtilization", 0.5),
        ("MaxProvisionedTableWriteCapacityUtilization", 0.25),
    ):
        samples.append(sample(metric, (), value, 1))
    samples.append(sample("UserErrors", (), 7.0, 7))
    return samples


def _replicated_table_samples(sample: Callable[..., Sample], table: tuple[tuple[str, str], ...]) -> list[Sample]:
    """REPLICATED_TABLE's replication (from each replica's region to the other), stream,
    Kinesis change data capture and index build."""
    samples = []
    for source, receiving in (("us-east-1", "eu-west-1"), ("eu-west-1", "us-east-1")):
        to = (*table, ("ReceivingRegion", receiving))
        samples.append(sample("ReplicationLatency", to, 480.0, 4, region=source))
        samples.append(sample("PendingReplicationCount", to, 3.0, 1, region=source))
    stream = (*table, ("Operation", "GetRecords"), *OPERATIONS["GetRecords"])
    samples.append(sample("ReturnedRecordsCount", stream, 40.0, 4))
    samples.append(sample("ReturnedBytes", stream, 8192.0, 4))
    cdc = (*table, ("DelegatedOperation", "KinesisDataStreamReplication"))
    samples.append(sample("AgeOfOldestUnreplicatedRecord", cdc, 250.0, 1))
    samples.append(sample("FailedToReplicateRecordCount", cdc, 2.0, 1))
    samples.append(sample("ThrottledPutRecordCount", cdc, 6.0, 3))
    index = (*table, ("GlobalSecondaryIndexName", INDEX.split("/", 1)[1]))
    samples.append(sample("OnlineIndexPercentageProgress", index, 30.0, 1))  # Maximum 90
    samples.append(sample("OnlineIndexConsumedWriteCapacity", index, 10.0, 2))
    samples.append(sample("OnlineIndexThrottleEvents", index, 1.0, 1))
    return samples


def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code


def get_json(url: str, **params: str) -> Any:
    with urllib.request.urlopen(f"{url}?{urllib.parse.urlencode(params)}", timeout=10) as answer:
        return json.load(answer)


@dataclass(frozen=True, slots=True)
class Stack:
    receiver_url: str
    prometheus: PrometheusServer
    minute_ms: int
    samples_sent: int
    deliveries: dict[int, int]
    """Deliveries sent, by the status they were answered with."""

    def api_points(self, metric: str, endpoint: str | None) -> list[list[float]]:
        params = {
            "metric": metric,
            "service": SERVICE,
            "start": str(self.minute_ms // 1000),
            "end": str(self.minute_ms // 1000),
        }
        if endpoint is not None:
            params["endpoint"] = endpoint
        return get_json(self.receiver_url + "/api/v1/query", **params)["points"]

    def exposition(self) -> str:
        with urllib.request.urlopen(self.receiver_url + "/metrics", timeout=10) as answer:
            return answer.read().decode()


INVENTORY: dict[str, dict[str, Any]] = {
    "GameScores": {"billing_mode": "PROVISIONED", "provisioned": {"read": 400.0, "write": 100.0}, "indexes": [],
                   "tags": {"team": "games"}},
    REPLICATED_TABLE: {
        "billing_mode": "PAY_PER_REQUEST", "on_demand_max": {"read": 2_000.0, "write": 1_000.0},
        "warm_throughput": {"read": 12_000.0, "write": 4_000.0, "status": "ACTIVE"}, "tags": {"team": "shop"},
        "indexes": [{"name": INDEX.split("/", 1)[1], "kind": "global", "provisioned": None, "on_demand_max": None,
                     "warm_throughput": {"read": 12_000.0, "write": 4_000.0, "status": "ACTIVE"}}],
    },
}  # fmt: skip
"""What the table inventory knows of two of the tables (in the store before the receiver
starts): a provisioned table and an on-demand one with an index, for the ceiling metrics."""


def _put_inventory(store_path: Path) -> None:
    async def put() -> None:
        store = SQLiteStore(store_path)
        await store.open()
        try:
            await store.put_inventory(
                [
                    item_of(TABLE, ACCOUNT, "us-east-1", name, int(time.time() * 1000),
                            {"name": name, "account": ACCOUNT, "region": "us-east-1", "provisioned": None,
                             "on_demand_max": None, "warm_throughput": None, "deleted": None, **fields})
                    for name, fields in INVENTORY.items()
                ]
                + [item_of(LIMITS, ACCOUNT, "us-east-1", "", int(time.time() * 1000), {"table_max_read": 40_000.0, "table_max_write": 40_000.0,
                                                                "account_max_read": 80_000.0, "account_max_write": 80_000.0})]
            )  # fmt: skip
        finally:
            await store.close()

    asyncio.run(put())


@contextlib.contextmanager
def running_stack(workdir: Path) -> Iterator[Stack]:
    """A fed receiver (with an inventory in its store, and the tag ``team`` as a label) and a
    Prometheus that scraped it twice since its values were derived; both stopped after."""
    minute_ms = exposed_minute_ms(time.time())
    samples = dynamodb_minute(minute_ms)
    store_path = workdir / "receiver" / "metrics.db"
    store_path.parent.mkdir()
    _put_inventory(store_path)
    # --inventory-tag-labels needs --inventory on; its poller finds no AWS here (an endpoint
    # that refuses connections) and leaves the store's inventory as it is.
    no_aws = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}", "AWS_ACCESS_KEY_ID": "x",
              "AWS_SECRET_ACCESS_KEY": "x", "AWS_MAX_ATTEMPTS": "1"}  # fmt: skip
    with ReceiverProcess(
        "--store", f"sqlite:///{store_path}", "--allow-unauthenticated",
        "--inventory", "us-east-1", "--inventory-tag-labels", "team", env=no_aws,
    ) as receiver:  # fmt: skip
        receiver.wait_listening()
        prometheus = PrometheusServer(workdir, f"127.0.0.1:{receiver.port}")
        try:
            # Started first: its first scrape waits ~5 s for service discovery, time enough
            # to feed the receiver and let it derive.
            prometheus.start()
            deliveries: dict[int, int] = {}
            half = len(samples) // 2  # a minute split over two deliveries, as Firehose may do
            for delivery in (
                Delivery(samples[:half]),
                Delivery(samples[half:]),
                Delivery(records=[b"\x00\x01 not a record"]),
            ):
                status = post(receiver.url + INGEST_PATH, delivery.body, delivery.headers)
                deliveries[status] = deliveries.get(status, 0) + 1
            assert deliveries == {200: 3}, receiver.log  # the bad record quarantined
            stack = Stack(receiver.url, prometheus, minute_ms, len(samples), deliveries)
            _wait_for_derived(stack)
            # The minute's values may be derived in more than one pass (a delivery each): wait
            # until the exposition stops changing, then for two scrapes of all of it (two
            # points for rate() over the counters, too).
            lines = _settled_exposition_lines(stack)
            complete = f"scrape_samples_scraped == {lines}"
            (first,) = prometheus.wait_for(f"timestamp({complete})", lambda result: len(result) == 1)
            prometheus.wait_for(f"timestamp({complete}) > {first['value'][1]}", lambda result: len(result) == 1)
            yield stack
        finally:
            prometheus.stop()


def _settled_exposition_lines(stack: Stack, timeout: float = 30) -> int:
    """The number of samples /metrics exposes once it stayed the same for three deriver
    intervals (2 s each) with values for the fed minute; the series, not their values, are
    compared (the receiver's own counters move with every scrape)."""
    deadline = time.monotonic() + timeout
    last: list[str] = []
    since = time.monotonic()
    while True:
        series = [line.rsplit(" ", 1)[0] for line in stack.exposition().splitlines() if line and line[0] != "#"]
        if series != last:
            last, since = series, time.monotonic()
        elif time.monotonic() - since >= 6:
            return len(series)
        if time.monotonic() > deadline:
            raise AssertionError("the receiver's /metrics kept changing")
        time.sleep(0.5)


def _wait_for_derived(stack: Stack, timeout: float = 30) -> None:
    """The receiver's deriver runs every 2 s; wait until the fed minute has values."""
    deadline = time.monotonic() + timeout
    while not stack.api_points("aws_dynamodb_user_errors", None):
        if time.monotonic() > deadline:
            raise AssertionError("the receiver did not derive the fed minute")
        time.sleep(0.1)


# -- the tests -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("prometheus")) as running:
        yield running


def selector(metric: str, endpoint: str | None = None) -> str:
    # json.dumps quotes and escapes as PromQL's double-quoted strings do.
    labels = f"service={json.dumps(SERVICE)}"
    if endpoint is not None:
        labels += f",endpoint={json.dumps(endpoint)}"
    return f"{metric}{{{labels}}}"


@pytest.mark.parametrize(
    ("metric", "endpoint"),
    [
        ("aws_dynamodb_endpoint_consumed_read_capacity_units", "Orders"),
        ("aws_dynamodb_endpoint_get_successful_request_latency_p99_9", "GameScores"),
        ("aws_dynamodb_get_successful_request_latency", None),
        ("aws_dynamodb_account_max_reads", None),
    ],
)
def test_promql_gives_the_query_apis_value_for_the_minute(stack: Stack, metric: str, endpoint: str | None) -> None:
    result = stack.prometheus.wait_for(selector(metric, endpoint), lambda r: len(r) == 1)
    points = stack.api_points(metric, endpoint)
    assert points == [[stack.minute_ms // 1000, float(result[0]["value"][1])]]


def test_label_values_with_quotes_backslashes_and_newlines_reach_prometheus_intact(stack: Stack) -> None:
    odd = TABLES[-1]
    result = stack.prometheus.wait_for(
        selector("aws_dynamodb_endpoint_consumed_write_capacity_units", odd), lambda r: len(r) == 1
    )
    assert result[0]["metric"]["endpoint"] == odd
    points = stack.api_points("aws_dynamodb_endpoint_consumed_write_capacity_units", odd)
    assert points == [[stack.minute_ms // 1000, float(result[0]["value"][1])]]


def test_prometheus_takes_every_exposed_sample(stack: Stack) -> None:
    exposed = [line for line in stack.exposition().splitlines() if line and not line.startswith("#")]
    result = stack.prometheus.query('scrape_samples_scraped{job="receiver"}')
    assert float(result[0]["value"][1]) == len(exposed)
    for refused in ("duplicate_timestamp", "out_of_order", "out_of_bounds"):
        assert stack.prometheus.own_counter(f"prometheus_target_scrapes_sample_{refused}_total") == 0


def test_the_exposed_minute_reaches_prometheus_as_its_start_in_seconds(stack: Stack) -> None:
    result = stack.prometheus.query("metric_stream_receiver_latest_complete_minute_timestamp_seconds")
    assert float(result[0]["value"][1]) == stack.minute_ms / 1000


def test_the_receivers_counters_reach_prometheus(stack: Stack) -> None:
    query = stack.prometheus.query
    assert float(query("metric_stream_receiver_firehose_samples_total")[0]["value"][1]) == stack.samples_sent
    by_status = {
        r["metric"]["status"]: float(r["value"][1]) for r in query("metric_stream_receiver_firehose_requests_total")
    }
    assert by_status == {str(status): count for status, count in stack.deliveries.items()}
    quarantined = query('metric_stream_receiver_records_quarantined_total{reason="empty_frame"}')
    assert float(quarantined[0]["value"][1]) == 1
    deliveries = query("metric_stream_receiver_firehose_request_duration_seconds_count")
    assert float(deliveries[0]["value"][1]) == sum(stack.deliveries.values())


def test_ceilings_reach_prometheus_with_the_tables_tags_as_labels(stack: Stack) -> None:
    query = stack.prometheus.query
    by_team = {
        (r["metric"]["endpoint"], r["metric"]["region"]): float(r["value"][1])
        for r in query('aws_dynamodb_endpoint_read_ceiling{tag_team=~"games|shop"}')
    }
    # The index of the on-demand table has no maximum of its own: the account's per-table
    # one; it carries its table's tag.
    assert by_team == {
        ("GameScores", "us-east-1"): 400.0,
        (REPLICATED_TABLE, "us-east-1"): 2_000.0,
        (INDEX, "us-east-1"): 40_000.0,
    }
    (utilization,) = query('aws_dynamodb_endpoint_read_ceiling_utilization{endpoint="GameScores"}')
    (points,) = stack.api_points("aws_dynamodb_endpoint_read_ceiling_utilization", "GameScores")
    assert float(utilization["value"][1]) == points[1]
    inventory_calls = query("metric_stream_receiver_inventory_lease_held")
    assert float(inventory_calls[0]["value"][1]) == 1
