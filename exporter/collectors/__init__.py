"""Collector registry: config section name → collector class (one module per collector)."""

from __future__ import annotations

from typing import Any

from exporter.collectors.apps.collector import AppsCollector
from exporter.collectors.backups.collector import BackupsCollector
from exporter.collectors.base import CollectError, Collector, Context
from exporter.collectors.databases import DatabaseCollector
from exporter.collectors.http import HttpCollector
from exporter.collectors.redis_queues.collector import RedisQueuesCollector
from exporter.collectors.slowlog import SlowlogCollector
from exporter.collectors.supervisor import SupervisorCollector
from exporter.collectors.tls.collector import TlsCollector

# Each collector module is listed once here; its class's `kind` is its config section.
_CLASSES: tuple[type[Collector[Any]], ...] = (
    BackupsCollector,
    RedisQueuesCollector,
    SupervisorCollector,
    HttpCollector,
    TlsCollector,
    AppsCollector,
    SlowlogCollector,
    DatabaseCollector,
)

REGISTRY: dict[str, type[Collector[Any]]] = {cls.kind: cls for cls in _CLASSES}

__all__ = ["REGISTRY", "CollectError", "Collector", "Context"]
