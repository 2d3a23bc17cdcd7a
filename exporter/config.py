"""Exporter configuration: one section per collector type, each a list of named instances.

The sections come from the collector registry (`exporter.collectors.registry`), which passes
its instance models to `build_model`: this module knows no collector, so collectors can import
it without loading each other.
"""

from __future__ import annotations

from collections.abc import Mapping
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


def build_model(sections: Mapping[str, type[InstanceConfig]]) -> type[ExporterBase]:
    """Build the top-level model: a list section per collector type, of its instance model."""
    fields: dict[str, Any] = {
        kind: (list[model], Field(default_factory=list))  # type: ignore[valid-type]
        for kind, model in sections.items()
    }
    model: type[ExporterBase] = create_model("ExporterConfig", __base__=ExporterBase, **fields)
    return model


def load_config(model: type[ExporterBase], path: str | Path) -> ExporterBase:
    """Load and validate a config file; raise ConfigError listing every problem."""
    return load_file(model, path, unique=_unique_names(model))


def load_config_text(
    model: type[ExporterBase], text: str, source: str = "<config>"
) -> ExporterBase:
    """Validate config text (tests, --check-config on stdin)."""
    return load_model(model, text, source, unique=_unique_names(model))


def _unique_names(model: type[ExporterBase]) -> Unique:
    # Instance names are distinct within a section: they label the section's series.
    sections = set(model.model_fields) - set(ExporterBase.model_fields)
    return dict.fromkeys(sections, ("name", "name"))


def effective_timing(config: ExporterBase, instance: InstanceConfig) -> tuple[float, float]:
    """Return (interval, timeout) for an instance, falling back to the defaults."""
    interval = instance.interval or config.defaults.interval
    timeout = instance.timeout or config.defaults.timeout
    return interval, min(timeout, interval)


__all__ = ["BaseModel", "ExporterBase", "InstanceConfig", "build_model", "load_config"]
