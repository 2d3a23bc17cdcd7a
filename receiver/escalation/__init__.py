"""Escalation: policies, the pure engine, its plan and worker."""
