"""Durable intake: webhooks are appended to a local inbox and applied by a separate process."""
