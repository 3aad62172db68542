"""The --store URL: which backend each form opens, and one clear sentence for every bad one."""

from __future__ import annotations

from pathlib import Path

import pytest

from receiver.store import MemoryStore, SQLiteStore, Store, StoreConfigError, open_store_from_url


def test_memory_url_gives_a_memory_store():
    store = open_store_from_url("memory://")
    assert isinstance(store, MemoryStore) and isinstance(store, Store)


def test_three_slashes_give_a_path_relative_to_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = open_store_from_url("sqlite:///data/metrics.db")
    assert isinstance(store, SQLiteStore) and isinstance(store, Store)
    assert store.path == tmp_path / "data" / "metrics.db"


def test_the_contracts_default_url_is_relative(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert open_store_from_url("sqlite:///./data/metrics.db").path == tmp_path / "data" / "metrics.db"


def test_four_slashes_give_an_absolute_path(tmp_path):
    store = open_store_from_url(f"sqlite:///{tmp_path}/metrics.db")  # tmp_path starts with "/"
    assert store.path == tmp_path / "metrics.db"


def test_a_home_relative_path_is_expanded(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert open_store_from_url("sqlite:///~/metrics.db").path == tmp_path / "metrics.db"


@pytest.mark.parametrize("level", ["normal", "FULL"])
def test_the_durability_level_is_accepted_from_the_query(level):
    assert isinstance(open_store_from_url(f"sqlite:///m.db?synchronous={level}"), SQLiteStore)


def test_options_reach_the_store(tmp_path):
    store = open_store_from_url("memory://", request_ttl_s=5)
    assert isinstance(store, MemoryStore)
    with pytest.raises(TypeError):
        open_store_from_url(f"sqlite:///{tmp_path}/m.db", no_such_option=1)


@pytest.mark.parametrize(
    ("url", "hint"),
    [
        ("", "no scheme"),
        ("metrics.db", "no scheme"),
        ("memory", "no scheme"),
        ("memory://somewhere", "memory://"),
        ("postgres://db/metrics", "unsupported scheme"),
        ("sqlite://data/metrics.db", "three slashes"),
        ("sqlite://", "three slashes"),
        ("sqlite:///", "no database file"),
        ("sqlite:///data/", "no database file"),
        ("sqlite:///:memory:", "memory://"),
        ("sqlite:///m.db?cache=shared", "unknown option"),
        ("sqlite:///m.db?synchronous=sometimes", "full or normal"),
        ("sqlite:///m.db?synchronous", "malformed"),
    ],
)
def test_a_bad_url_is_one_sentence_naming_it(url, hint):
    with pytest.raises(StoreConfigError) as caught:
        open_store_from_url(url)
    message = str(caught.value)
    assert repr(url) in message
    assert hint in message
    assert "\n" not in message and ". " not in message


def test_a_store_config_error_is_a_value_error():
    with pytest.raises(ValueError):
        open_store_from_url("ftp://x")


def test_parsing_a_url_touches_no_files(tmp_path):
    open_store_from_url(f"sqlite:///{tmp_path}/new/metrics.db")
    assert not Path(tmp_path / "new").exists()
