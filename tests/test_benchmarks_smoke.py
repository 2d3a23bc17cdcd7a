"""Smoke test of the benchmark harness: `benchmarks/run --quick` runs every script, writes a table.

Never asserts a time: only that each benchmark ran, was parsed, and landed in the table.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require_tool

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / "benchmarks" / "run"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


def harness(*args: str, timeout: float = 280) -> subprocess.CompletedProcess[str]:
    """Run benchmarks/run with the test's interpreter (the project's virtualenv)."""
    return subprocess.run(
        [sys.executable, str(RUN), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def table(readme: Path) -> list[str]:
    """Return the Markdown table rows written between the results markers."""
    text = readme.read_text()
    block = text.split(BEGIN, 1)[1].split(END, 1)[0]
    return [line for line in block.splitlines() if line.startswith("| ")]


@pytest.mark.slow
def test_quick_run_writes_a_row_for_every_benchmark(tmp_path: Path) -> None:
    for binary in ("mariadb-install-db", "mariadbd", "redis-server", "gzip", "unzip"):
        require_tool(binary)
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\nbefore\n{BEGIN}\nold table\n{END}\nafter\n")

    done = harness("--quick", "--readme", str(readme), "--results-dir", str(tmp_path / "res"))

    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    text = readme.read_text()
    assert text.startswith("# x\n\nbefore\n")
    assert text.endswith("after\n")
    assert "old table" not in text
    assert "Machine: " in text
    rows = table(readme)
    assert rows[0].startswith("| measure | maintwatch | baseline, same run |")
    scripts = sorted(p.name for p in (ROOT / "benchmarks").glob("*.py") if p.name != "common.py")
    (results_file,) = (tmp_path / "res").glob("*-quick.json")
    results = json.loads(results_file.read_text())["results"]
    assert sorted(results) == scripts
    for script, result in results.items():
        assert result["status"] in ("ok", "skipped"), (script, result["reason"])
        if result["status"] == "ok":
            assert any(row.endswith(f"| `{script}` |") for row in rows), script
    # Our own rows carry numbers: a scrape row and the per-hour load rows.
    assert any(row.startswith("| /metrics scrape") for row in rows)
    assert any(row.startswith("| RSS now (peak)") for row in rows)
    assert sum(row.startswith("| Load per hour at 15 s") for row in rows) in (1, 10)


def test_readme_without_markers_is_refused(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# no markers here\n")

    done = harness("--only", "--readme", str(readme), "--results-dir", str(tmp_path), timeout=60)

    assert done.returncode != 0
    assert f"{readme}: no {BEGIN}" in done.stderr
    assert readme.read_text() == "# no markers here\n"
