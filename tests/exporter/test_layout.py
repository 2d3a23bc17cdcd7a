"""Module boundaries: the collector interface and the config model load no collector."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

DRIVERS = ("psycopg", "pymysql", "redis", "supervisor", "exporter.sql")


@pytest.mark.parametrize(
    "module", ["exporter.collectors", "exporter.collectors.base", "exporter.config"]
)
def test_importing_loads_no_collector_or_driver(module: str) -> None:
    code = f"import json, sys, {module}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout
    loaded = json.loads(out)
    drivers = [m for m in loaded if m.split(".")[0] in DRIVERS or m.startswith(DRIVERS)]
    collectors = [
        m
        for m in loaded
        if m.startswith("exporter.collectors.") and m != "exporter.collectors.base"
    ]
    assert (drivers, collectors) == ([], [])
