"""Collector registry: config section name → collector class, and what that implies.

The config model is built from the collectors' instance models, and the metric catalogue from
their declared metrics (plus the exporter's own), so neither is written down twice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from exporter import config
from exporter.collectors.apps.collector import AppsCollector
from exporter.collectors.backups.collector import BackupsCollector
from exporter.collectors.base import Collector
from exporter.collectors.databases import DatabaseCollector
from exporter.collectors.http import HttpCollector
from exporter.collectors.redis_queues.collector import RedisQueuesCollector
from exporter.collectors.slowlog import SlowlogCollector
from exporter.collectors.supervisor import SupervisorCollector
from exporter.collectors.tls.collector import TlsCollector
from exporter.metrics import MetricDef
from exporter.runtime import SELF_METRICS
from maintwatch.metricdef import by_name

# Each collector is listed once here; its class's `kind` is its config section.
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


def config_model() -> type[config.ExporterBase]:
    """Build the top-level config model from the registered collectors' instance models."""
    return config.build_model({kind: cls.config_type for kind, cls in REGISTRY.items()})


def load_config(path: str | Path) -> config.ExporterBase:
    """Load and validate the exporter config file; raise ConfigError listing every problem."""
    return config.load_config(config_model(), path)


def load_config_text(text: str, source: str = "<config>") -> config.ExporterBase:
    """Validate exporter config text (tests, --check-config on stdin)."""
    return config.load_config_text(config_model(), text, source)


def declared_metrics() -> dict[str, MetricDef]:
    """Return every metric the exporter can expose by name: its own, then each collector's.

    Raise ValueError when two declarations share a name (one family would carry two HELPs).
    """
    return by_name((*SELF_METRICS, *(m for cls in REGISTRY.values() for m in cls.metrics)))
