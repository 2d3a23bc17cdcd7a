"""examples/: every config passes the `--check-config` command its own header documents, run
exactly as written (the stand-in secrets in examples/secrets/ make that possible)."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require_tool

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(p for p in (REPO / "examples").rglob("*.yml") if p.name != "alertmanager.yml")
DOCUMENTED = re.compile(r"^#.*?(maintwatch-(?:exporter|receiver) [^#\n]*--check-config)", re.M)


def documented_command(example: Path) -> tuple[list[str], Path]:
    """Return the header's check command and the folder it is meant to run from."""
    match = DOCUMENTED.search(example.read_text())
    assert match, f"{example}: no documented --check-config command"
    argv = shlex.split(match.group(1))
    words = [part for arg in argv for part in arg.split("=", 1)]  # --flag=value or --flag value
    config = words[words.index("--config.file") + 1]
    # A path from the repository root (examples/x.yml), or the file's name beside it.
    cwd = REPO if (REPO / config).resolve() == example else example.parent
    assert (cwd / config).resolve() == example, f"{example}: command names {config}"
    return argv, cwd


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: str(p.relative_to(REPO)))
def test_example_passes_its_documented_check(example: Path) -> None:
    argv, cwd = documented_command(example)
    binary = Path(sys.executable).parent / argv[0]
    done = subprocess.run(
        [str(binary), *argv[1:]], cwd=cwd, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "OK" in done.stdout
    assert "warning" not in done.stderr, done.stderr  # every label set pages someone


def test_recommended_alertmanager_config_passes_amtool() -> None:
    done = subprocess.run(
        [require_tool("amtool"), "check-config", "examples/alertmanager.yml"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
