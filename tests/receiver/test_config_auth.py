"""Authentication fails closed, and the connection options: `serve` settings from options
and the environment."""

from __future__ import annotations

import argparse
import logging

import pytest

from receiver.config import ConfigError, ServeConfig, add_serve_arguments, serve_config
from receiver.server.app import create_app
from receiver.store import open_store_from_url
from tests.apps import serve_app
from tests.processes import run_cli


def config_from(*argv: str, **env: str) -> ServeConfig:
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    return serve_config(parser.parse_args(argv), env)


def test_no_key_is_refused_naming_both_ways_out():
    with pytest.raises(ConfigError) as refused:
        config_from()
    message = str(refused.value)
    assert "--access-key" in message and "RECEIVER_ACCESS_KEYS" in message
    assert "--allow-unauthenticated" in message


@pytest.mark.parametrize("keys", ["", "   "])
def test_an_empty_key_variable_is_no_key(keys):
    with pytest.raises(ConfigError, match="--allow-unauthenticated"):
        config_from(RECEIVER_ACCESS_KEYS=keys)


@pytest.mark.parametrize("keys", [" , ,", "a,,b", "a,b,", ",a"])
def test_an_empty_entry_in_the_key_list_is_an_error_naming_it(keys):
    with pytest.raises(ConfigError, match="RECEIVER_ACCESS_KEYS .*empty"):
        config_from(RECEIVER_ACCESS_KEYS=keys)
    # ...even when unauthenticated serving is allowed: the list is wrong, not missing.
    with pytest.raises(ConfigError, match="RECEIVER_ACCESS_KEYS"):
        config_from("--allow-unauthenticated", RECEIVER_ACCESS_KEYS=keys)


@pytest.mark.parametrize("key", ["", "  "])
def test_an_empty_access_key_option_is_an_error_naming_it(key):
    with pytest.raises(ConfigError, match="--access-key .*empty"):
        config_from("--access-key", "good", "--access-key", key)


def test_keys_from_options_and_the_environment():
    assert config_from("--access-key", "a", "--access-key", "b").access_keys == ("a", "b")
    assert config_from(RECEIVER_ACCESS_KEYS="a, b").access_keys == ("a", "b")
    # The option wins over the environment, as for every setting.
    assert config_from("--access-key", "a", RECEIVER_ACCESS_KEYS="b").access_keys == ("a",)


def test_allow_unauthenticated_by_option_or_environment():
    assert config_from("--allow-unauthenticated").allow_unauthenticated
    assert config_from(RECEIVER_ALLOW_UNAUTHENTICATED="true").allow_unauthenticated
    assert config_from(RECEIVER_ALLOW_UNAUTHENTICATED="1").access_keys == ()
    with pytest.raises(ConfigError, match="--access-key"):
        config_from(RECEIVER_ALLOW_UNAUTHENTICATED="false")
    with pytest.raises(ConfigError, match="RECEIVER_ALLOW_UNAUTHENTICATED"):
        config_from(RECEIVER_ALLOW_UNAUTHENTICATED="yes please")


def test_an_app_without_keys_cannot_be_built_by_accident():
    with pytest.raises(ConfigError, match="--allow-unauthenticated"):
        create_app(ServeConfig(), open_store_from_url("memory://"))
    with pytest.raises(ConfigError, match="empty"):
        create_app(ServeConfig(access_keys=("a", "")), open_store_from_url("memory://"))


async def test_serving_unauthenticated_warns_at_start(caplog):
    caplog.set_level(logging.WARNING)
    app = create_app(ServeConfig(allow_unauthenticated=True), open_store_from_url("memory://"))
    async with serve_app(app):
        pass
    assert any("without authentication" in r.getMessage() for r in caplog.records)


async def test_serving_with_a_key_does_not_warn(caplog):
    caplog.set_level(logging.WARNING)
    async with serve_app(create_app(ServeConfig(access_keys=("k",)), open_store_from_url("memory://"))):
        pass
    assert not any("without authentication" in r.getMessage() for r in caplog.records)


def test_serve_without_a_key_exits_2_with_one_sentence():
    result = run_cli("serve", "--port", "0", "--store", "memory://", env={"RECEIVER_ACCESS_KEYS": None})
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "--access-key" in lines[0] and "--allow-unauthenticated" in lines[0]


def test_connection_settings_default_and_from_the_environment():
    config = config_from("--access-key", "k")
    assert (config.read_timeout_s, config.idle_timeout_s, config.max_connections) == (60.0, 130.0, 256)
    config = config_from(
        "--access-key", "k", RECEIVER_READ_TIMEOUT="5", RECEIVER_IDLE_TIMEOUT="300", RECEIVER_MAX_CONNECTIONS="100"
    )
    assert (config.read_timeout_s, config.idle_timeout_s, config.max_connections) == (5.0, 300.0, 100)
    config = config_from(
        "--access-key",
        "k",
        "--read-timeout",
        "2.5",
        "--idle-timeout",
        "10",
        "--max-connections",
        "7",
        RECEIVER_READ_TIMEOUT="5",
    )
    assert (config.read_timeout_s, config.idle_timeout_s, config.max_connections) == (2.5, 10.0, 7)


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (("--read-timeout", "0"), "--read-timeout"),
        (("--read-timeout", "soon"), "--read-timeout"),
        (("--idle-timeout", "-1"), "--idle-timeout"),
        (("--max-connections", "0"), "--max-connections"),
        (("--max-connections", "many"), "--max-connections"),
    ],
)
def test_bad_connection_settings_are_one_sentence_naming_them(argv, named):
    with pytest.raises(ConfigError, match=named):
        config_from("--access-key", "k", *argv)
