"""Reading ``dynamodb://TABLE?region=R[&endpoint_url=URL][&create=true]``, and the names in it.

Kept apart from the store so parsing a URL imports no boto3 (the CLI starts faster).
Retention is not a URL option: ``--retention-minutes-days`` and ``--retention-hours-days``
set it for every store, and the CLI always passes them.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from receiver.store.base import StoreConfigError

OPTIONS = ("region", "endpoint_url", "create")
EXAMPLE = "dynamodb://TABLE?region=us-east-1"

_TABLE_NAME = re.compile(r"[A-Za-z0-9_.-]{3,255}")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d+")
_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")


def dynamodb_arguments(url: str, rest: str) -> dict[str, Any]:
    """The DynamoDBStore constructor arguments of ``url``, whose text after ``dynamodb://`` is ``rest``."""
    table, _, query = rest.partition("?")
    if not table:
        raise StoreConfigError(f"store URL {url!r} names no table; write {EXAMPLE}")
    problem = table_name_problem(table)
    if problem:
        raise StoreConfigError(f"store URL {url!r} has the table name {table!r}, but {problem}")
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise StoreConfigError(f"store URL {url!r} has a malformed query string; write {EXAMPLE}") from None
    given: dict[str, str] = {}
    for name, value in pairs:
        if name not in OPTIONS:
            raise StoreConfigError(
                f"store URL {url!r} has the unknown option {name!r}; the dynamodb store takes {', '.join(OPTIONS)}"
            )
        if name in given:
            raise StoreConfigError(f"store URL {url!r} gives {name} twice; give it once")
        given[name] = value
    region = given.get("region")
    if not region:
        raise StoreConfigError(f"store URL {url!r} has no region; add it, as in {EXAMPLE}")
    problem = region_problem(region)
    if problem:
        raise StoreConfigError(f"store URL {url!r} has region={region!r}, but {problem}")
    arguments: dict[str, Any] = {"table": table, "region": region}
    if "endpoint_url" in given:
        arguments["endpoint_url"] = _endpoint(url, given["endpoint_url"])
    if "create" in given:
        arguments["create"] = _flag(url, given["create"])
    return arguments


def table_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a DynamoDB table name, or None."""
    if _TABLE_NAME.fullmatch(name) is None:
        return "a DynamoDB table name is 3 to 255 letters, digits, '_', '-' or '.'"
    return None


def region_problem(region: str) -> str | None:
    """Why ``region`` cannot be an AWS region name, or None."""
    if _REGION.fullmatch(region) is None:
        return "an AWS region looks like us-east-1"
    return None


def _endpoint(url: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise StoreConfigError(
            f"store URL {url!r} has endpoint_url={value!r}; give an http:// or https:// URL "
            "such as http://127.0.0.1:8000, or leave it out to use AWS"
        )
    return value


def _flag(url: str, value: str) -> bool:
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise StoreConfigError(f"store URL {url!r} has create={value!r}; write create=true or create=false")
