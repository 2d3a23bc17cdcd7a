"""Delivery: messages, the outbox, channels, templates, the digest."""
