"""Where samples live: the Store protocol, its backends, and the ``--store`` URL that picks one.

URL forms (as in SQLAlchemy, the part after ``sqlite:///`` is the file path, so a fourth
slash makes it absolute):

- ``memory://`` — in this process only, gone when it exits;
- ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` — a SQLite file, created
  with its folder; ``?synchronous=normal`` trades power-loss durability for speed;
- ``dynamodb://TABLE?region=R[&endpoint_url=URL][&create=true]`` — a
  DynamoDB table shared by several receivers (see store/dynamodb/).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from receiver.store.base import Store, StoreConfigError, StoreError
from receiver.store.dynamodb.url import dynamodb_arguments
from receiver.store.memory import MemoryStore
from receiver.store.sqlite import SYNCHRONOUS_MODES, SQLiteStore

__all__ = [
    "MemoryStore",
    "SQLiteStore",
    "Store",
    "StoreConfigError",
    "StoreError",
    "open_store_from_url",
]

SUPPORTED_FORMS = "memory://, sqlite:///relative/path.db, sqlite:////absolute/path.db or dynamodb://TABLE?region=REGION"
_SQLITE_QUERY_OPTIONS = ("synchronous",)


def open_store_from_url(url: str, **options: Any) -> Store:
    """The (not yet opened) store a ``--store`` URL names; ``options`` go to its constructor.

    Raises StoreConfigError, with one sentence naming the URL and the supported forms,
    when the URL is not one of them.
    """
    scheme, separator, rest = url.partition("://")
    scheme = scheme.lower()
    if not separator:
        raise StoreConfigError(f"store URL {url!r} has no scheme; use {SUPPORTED_FORMS}")
    if scheme == "memory":
        if rest:
            raise StoreConfigError(f"store URL {url!r} has text after memory://; write just memory://")
        return MemoryStore(**options)
    if scheme == "sqlite":
        return SQLiteStore(**{**_sqlite_arguments(url, rest), **options})
    if scheme == "dynamodb":
        arguments = dynamodb_arguments(url, rest)
        # Imported only now: boto3 takes ~0.3 s to import, and a bad URL should fail fast.
        from receiver.store.dynamodb import DynamoDBStore

        return DynamoDBStore(**{**arguments, **options})
    raise StoreConfigError(f"store URL {url!r} has an unsupported scheme {scheme!r}; use {SUPPORTED_FORMS}")


def _sqlite_arguments(url: str, rest: str) -> dict[str, Any]:
    path, _, query = rest.partition("?")
    if not path.startswith("/"):
        # sqlite://data/x.db: the first segment would be read as a host and silently lost.
        raise StoreConfigError(
            f"store URL {url!r} needs three slashes after sqlite: (sqlite:///relative/path.db) "
            "or four for an absolute path (sqlite:////absolute/path.db)"
        )
    path = path[1:]
    if not path or path.endswith("/"):
        raise StoreConfigError(f"store URL {url!r} names no database file; give one, as in sqlite:///./data/metrics.db")
    if path == ":memory:":
        raise StoreConfigError(f"store URL {url!r} asks for an in-memory SQLite database; use memory:// instead")
    arguments: dict[str, Any] = {"path": path}
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise StoreConfigError(
            f"store URL {url!r} has a malformed query string; write it as ?synchronous=full or ?synchronous=normal"
        ) from None
    for name, value in pairs:
        if name not in _SQLITE_QUERY_OPTIONS:
            raise StoreConfigError(
                f"store URL {url!r} has the unknown option {name!r}; "
                "the sqlite store takes only synchronous=full or normal"
            )
        if value.upper() not in SYNCHRONOUS_MODES:
            raise StoreConfigError(
                f"store URL {url!r} has synchronous={value!r}; the sqlite store takes synchronous=full or normal"
            )
        arguments[name] = value
    return arguments
