"""Grafana dashboards generated as code (`python -m dashboards generate [--check]`)."""
