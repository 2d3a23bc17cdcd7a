"""examples/*.yml: the full commented configs load with --check-config (secrets in a temp dir)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SECRET_DIR = "/etc/maintwatch/"


@pytest.mark.parametrize("program", ["exporter", "receiver"])
def test_example_config_is_valid(program: str, tmp_path: Path) -> None:
    text = (REPO / "examples" / f"{program}.yml").read_text()
    # Only the settings are checked, not the comments: secret paths there are examples too.
    settings = "\n".join(line.split(" #")[0] for line in text.splitlines())
    for path in set(re.findall(rf"{SECRET_DIR}[\w.-]+", settings)):
        (tmp_path / Path(path).name).write_text(f"example secret for {path}\n")
    config = tmp_path / f"{program}.yml"
    config.write_text(text.replace(SECRET_DIR, f"{tmp_path}/"))
    binary = Path(sys.executable).parent / f"maintwatch-{program}"
    done = subprocess.run(
        [str(binary), "--check-config", f"--config.file={config}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "OK" in done.stdout
    assert "warning" not in done.stderr, done.stderr  # every label set pages someone
