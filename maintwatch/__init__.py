"""Maintwatch: shared config, logging and duration helpers for exporter and receiver."""

__version__ = "0.1.0"
