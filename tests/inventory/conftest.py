"""Fixtures of the inventory tests: an AWS environment that reaches nothing real, and moto."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto import mock_aws

from tests.inventory.kit import REGION


@pytest.fixture
def aws_env(monkeypatch, tmp_path) -> None:
    """Fake credentials and one region, no profile or shared file, no endpoint override; and a
    proxy on a closed loopback port, so a call that moto does not catch fails here instead of
    reaching AWS."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB",
                 "AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL_CLOUDWATCH", "AWS_REGION"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def moto(aws_env) -> Iterator[None]:
    """moto's in-process mock of every AWS API, fresh for the test."""
    with mock_aws():
        yield
