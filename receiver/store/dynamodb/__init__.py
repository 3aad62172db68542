"""The ``dynamodb://`` store: one DynamoDB table shared by several receiver replicas.

- store.py: DynamoDBStore, the Store protocol over the table, and what a commit guarantees;
- url.py: reading ``dynamodb://TABLE?region=R…`` and checking the names in it (no boto3);
- table.py: the botocore client, opening (or creating) the table, every call;
- retry.py: which failures may pass, backoff with jitter, one deadline per operation;
- runner.py: the worker threads the blocking calls run on, and the health check's own
  thread (``ping`` never waits behind a commit; it has its own client too);
- items.py: the key layout of samples, catalogs and request ids, and the codec;
- samples.py: writing a request's samples, reading time ranges;
- derived.py: bucket versions and derived values (how replicas stay consistent);
- quarantine.py: quarantined records, compressed and split over several items;
- alarms.py: alarm events;
- inventory.py: the table inventory and leases.

``DynamoDBStore`` is imported from store.py on first use, not here: importing
``receiver.store.dynamodb.url`` (as ``open_store_from_url`` does for every URL) must not
import boto3, which takes ~0.3 s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from receiver.store.dynamodb.store import DynamoDBStore

__all__ = ["DynamoDBStore"]


def __getattr__(name: str) -> Any:
    if name == "DynamoDBStore":
        from receiver.store.dynamodb.store import DynamoDBStore

        return DynamoDBStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
