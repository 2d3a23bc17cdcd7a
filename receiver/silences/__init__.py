"""Alertmanager silences that follow acknowledged incidents."""
