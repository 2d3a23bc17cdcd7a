"""Exporter configuration: one section per collector type, each a list of named instances."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, create_model

from maintwatch.configload import PositiveDuration, StrictModel, Unique, load_file, load_model


class InstanceConfig(StrictModel):
    """Fields every collector instance has."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")
    interval: PositiveDuration | None = None
    timeout: PositiveDuration | None = None


class Defaults(StrictModel):
    """Interval and timeout for instances that do not set their own."""

    interval: PositiveDuration = 30.0
    timeout: PositiveDuration = 10.0


class ExporterBase(StrictModel):
    """Sections that are not collectors."""

    defaults: Defaults = Defaults()
    state_dir: Path | None = None

    def instances(self) -> dict[str, list[InstanceConfig]]:
        """Return the configured instances by section (collector type)."""
        out: dict[str, list[InstanceConfig]] = {}
        for key in type(self).model_fields:
            value = getattr(self, key)
            if isinstance(value, list) and all(isinstance(v, InstanceConfig) for v in value):
                out[key] = value
        return out


def unique_names() -> Unique:
    """Every collector section: instance names are distinct within it (they label series)."""
    from exporter.collectors import REGISTRY

    return dict.fromkeys(REGISTRY, ("name", "name"))


def config_model() -> type[ExporterBase]:
    """Build the top-level model from the collector registry (a section per collector type)."""
    from exporter.collectors import REGISTRY

    fields: dict[str, Any] = {
        kind: (list[cls.config_type], Field(default_factory=list))  # type: ignore[name-defined]
        for kind, cls in REGISTRY.items()
    }
    model: type[ExporterBase] = create_model("ExporterConfig", __base__=ExporterBase, **fields)
    return model


def load_config(path: str | Path) -> ExporterBase:
    """Load and validate the exporter config file; raise ConfigError listing every problem."""
    return load_file(config_model(), path, unique=unique_names())


def load_config_text(text: str, source: str = "<config>") -> ExporterBase:
    """Validate config text (tests, --check-config on stdin)."""
    return load_model(config_model(), text, source, unique=unique_names())


def effective_timing(config: ExporterBase, instance: InstanceConfig) -> tuple[float, float]:
    """Return (interval, timeout) for an instance, falling back to the defaults."""
    interval = instance.interval or config.defaults.interval
    timeout = instance.timeout or config.defaults.timeout
    return interval, min(timeout, interval)


__all__ = ["BaseModel", "ExporterBase", "InstanceConfig", "config_model", "load_config"]
