"""maintwatch exporter: maintenance signals (backups, queues, databases, TLS, workers, apps)."""

from maintwatch import __version__

__all__ = ["__version__"]
