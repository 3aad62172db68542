"""The built receiver image, run: buildah builds receiver/Dockerfile (image/build.sh) and runs its
entrypoint in a container with chroot isolation on the host's network, configured through the
environment as the ECS task configures it, with its store under /tmp."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from receiver.server.app import INGEST_PATH
from stacks.service import HEALTH_COMMAND
from tests.builders import MINUTE_MS, T0, Delivery, make_sample
from tests.image.buildah import Container, ContainerReceiver, build_image, image_config
from tests.processes import child_processes

pytestmark = pytest.mark.slow

RECEIVER_UID = 10001
SERVICE = "aws-dynamodb::123456789012"
# Like the task definition: every setting from the environment, the image's entrypoint as is.
ENV = {
    "RECEIVER_HOST": "127.0.0.1",
    "RECEIVER_PORT": "0",
    "RECEIVER_STORE": "sqlite:////tmp/metrics.db",
    "RECEIVER_ALLOW_UNAUTHENTICATED": "true",
}


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    build_image()
    return image_config()


@pytest.fixture(scope="module")
def container(config: dict[str, Any]) -> Iterator[Container]:
    with Container() as container:
        yield container


@pytest.fixture(scope="module")
def receiver(config: dict[str, Any], container: Container) -> Iterator[ContainerReceiver]:
    receiver = ContainerReceiver(container, config["Entrypoint"], ENV)
    try:
        yield receiver.wait_listening()
    finally:
        receiver.stop()


def http(url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, headers=headers or {}, method="POST" if body else "GET")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def recent_minute() -> int:
    """The minute two minutes ago, in make_sample's minutes after T0: inside every retention."""
    return (int(time.time() * 1000) - T0) // MINUTE_MS - 2


def test_image_runs_as_the_non_root_receiver_user(config: dict[str, Any], receiver: ContainerReceiver) -> None:
    assert config["User"] == f"{RECEIVER_UID}:{RECEIVER_UID}"
    uids = next(
        line
        for line in Path(f"/proc/{receiver.receiver_pid()}/status").read_text().splitlines()
        if line.startswith("Uid:")
    )
    assert uids.split()[1:] == [str(RECEIVER_UID)] * 4


def test_the_receiver_runs_the_compiled_decoder(receiver: ContainerReceiver) -> None:
    listening = next(line for line in receiver.lines if "listening" in line)
    assert "decoder=compiled" in listening, listening


def test_the_image_ships_no_compiler(config: dict[str, Any], container: Container) -> None:
    found = container.run(
        ["python", "-c", "import shutil; print([c for c in ('gcc', 'cc', 'g++') if shutil.which(c)])"], {}
    )
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == "[]"


def test_entrypoint_is_exec_form_serve(config: dict[str, Any]) -> None:
    assert config["Entrypoint"] == ["python", "-m", "receiver", "serve"]
    assert not config.get("Cmd")


def test_image_keeps_the_healthcheck(config: dict[str, Any]) -> None:
    # Docker format: the OCI format would drop HEALTHCHECK.
    assert config["Healthcheck"]["Test"] == ["CMD", "python", "-c", HEALTH_COMMAND]


def test_healthcheck_command_passes_inside_the_container(
    config: dict[str, Any], container: Container, receiver: ContainerReceiver
) -> None:
    port = urllib.parse.urlsplit(receiver.url).port
    result = container.run(config["Healthcheck"]["Test"][1:], {"RECEIVER_PORT": str(port)})
    assert result.returncode == 0, result.stderr


def test_healthz_answers(receiver: ContainerReceiver) -> None:
    assert http(receiver.url + "/healthz")[0] == 200


def test_delivery_is_acknowledged_and_queryable(receiver: ContainerReceiver) -> None:
    minute = recent_minute()
    delivery = Delivery([make_sample("GameScores", "ConsumedReadCapacityUnits", minute, value=120.0, count=4)])
    status, body = http(receiver.url + INGEST_PATH, delivery.body, delivery.headers)
    assert status == 200, body
    assert json.loads(body)["requestId"] == delivery.request_id

    start_s = (T0 + minute * MINUTE_MS) // 1000
    query = urllib.parse.urlencode(
        {
            "metric": "aws_dynamodb_endpoint_consumed_read_capacity_units",
            "service": SERVICE,
            "endpoint": "GameScores",
            "start": start_s,
            "end": start_s,
        }
    )
    deadline = time.monotonic() + 60
    while True:  # the deriver computes the minute after the delivery is committed
        status, body = http(f"{receiver.url}/api/v1/query?{query}")
        assert status == 200, body
        points = json.loads(body)["points"]
        if points or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert points == [[start_s, 2.0]]  # 120 units in the minute: 2 units/s
    # The rules ran in the evaluation worker, not in the fallback thread.
    assert "rule evaluation" not in receiver.log, receiver.log
    assert any("spawn_main" in line for line in child_processes(receiver.receiver_pid()).values())


def test_sigterm_stops_the_receiver_cleanly(config: dict[str, Any]) -> None:
    with Container() as container:
        receiver = ContainerReceiver(container, config["Entrypoint"], ENV)
        try:
            receiver.wait_listening()
            receiver.terminate()
            assert receiver.wait() == 0, receiver.log
        finally:
            receiver.stop()
    assert "stopped" in receiver.lines[-1]
