"""``python -m receiver serve``: the configuration from the command line and environment, the
store from its URL, then the server until SIGTERM; a user's mistake is one line and exit 2."""

from __future__ import annotations

import argparse
import asyncio
import sys

from receiver import logs
from receiver.config import ConfigError, serve_config
from receiver.store import StoreConfigError, StoreError, open_store_from_url


def serve_command(args: argparse.Namespace) -> int:
    from receiver.server import gctune, malloctune
    from receiver.server.site import serve

    gctune.tune()
    malloctune.tune()
    try:
        config = serve_config(args)
        logs.configure(config.log_level)
        options: dict[str, object] = {
            "minute_retention_days": config.minute_retention_days,
            "hour_retention_days": config.hour_retention_days,
        }
        if config.create_store and config.store_url.startswith("dynamodb://"):
            options["create"] = True
        store = open_store_from_url(config.store_url, **options)
        asyncio.run(serve(config, store))
    except (ConfigError, StoreConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except StoreError as exc:
        print(f"error: the store cannot be opened: {exc}", file=sys.stderr)
        return 1
    return 0
