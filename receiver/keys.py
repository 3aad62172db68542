"""The application's state: one ``web.AppKey`` per object the app owns.

``receiver.server.app.create_app`` sets them; handlers read ``request.app[KEY]``. The types are
imported only for type checking, so any stage's handlers can read a key without importing the
stages that build its value (views/ reads the store and the deriver's counts this way).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from receiver.alarms.runtime import Alarms
    from receiver.config import ServeConfig
    from receiver.derive.completeness import Completeness
    from receiver.derive.deriver import Deriver
    from receiver.exporters.otlp import OtlpExporter
    from receiver.firehose.handler import IngestSettings
    from receiver.firehose.telemetry import Telemetry
    from receiver.inventory.poller import InventoryPoller
    from receiver.inventory.tags import TagLabels
    from receiver.rules import RuleHolder
    from receiver.server.app import InFlight
    from receiver.store import Store
    from receiver.views.prometheus import ScrapeSettings

CONFIG: web.AppKey[ServeConfig] = web.AppKey("config")
IN_FLIGHT: web.AppKey[InFlight] = web.AppKey("in_flight")
RULES: web.AppKey[RuleHolder] = web.AppKey("rules")
DERIVER: web.AppKey[Deriver] = web.AppKey("deriver")
COMPLETENESS: web.AppKey[Completeness] = web.AppKey("completeness")
"""Which minutes are complete: for alarms, /metrics, the OTLP export and /api/v1/pipeline."""
STORE: web.AppKey[Store] = web.AppKey("store")
INGEST: web.AppKey[IngestSettings] = web.AppKey("ingest")
TELEMETRY: web.AppKey[Telemetry] = web.AppKey("telemetry")
OTLP_EXPORTER: web.AppKey[OtlpExporter] = web.AppKey("otlp_exporter")
ALARMS: web.AppKey[Alarms] = web.AppKey("alarms")
"""Present only with alarm rules configured (``ALARMS in app``)."""
INVENTORY: web.AppKey[InventoryPoller] = web.AppKey("inventory")
"""Present only with the inventory on (``INVENTORY in app``): the poller and its counters."""
TAG_LABELS: web.AppKey[TagLabels] = web.AppKey("tag_labels")
"""Present only with ``--inventory-tag-labels``: table tags as labels on /metrics and OTLP."""
SCRAPE: web.AppKey[ScrapeSettings] = web.AppKey("scrape")
"""Which minute ``/metrics`` exposes, and the clock it reads."""
DASHBOARD_FILES: web.AppKey[Mapping[str, Path]] = web.AppKey("dashboard_files")
"""The files the dashboard serves, by name (receiver/views/dashboard.py ``static_files``)."""
