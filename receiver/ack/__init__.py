"""Acknowledgement: one entry point, and its paths (links, SMS, chat)."""
