"""Backup sets: the collector, its config, and the listing and integrity checks it runs."""
