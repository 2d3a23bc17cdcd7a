"""maintwatch receiver: Alertmanager webhooks in, incidents, routing, escalation and paging out."""

from maintwatch import __version__

__all__ = ["__version__"]
