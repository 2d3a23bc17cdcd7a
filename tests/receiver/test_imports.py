"""The templates and the channels import without a circle, whichever comes first."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import receiver

RECEIVER = Path(receiver.__file__).parent


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("receiver.delivery.templates", "receiver.delivery.channels.base"),
        ("receiver.delivery.channels.base", "receiver.delivery.templates"),
        ("receiver.delivery.channels", "receiver.delivery.templates"),
    ],
)
def test_each_imports_first_in_a_fresh_interpreter(first: str, second: str) -> None:
    code = f"import {first}, {second}"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def _imports(path: Path) -> set[str]:
    """Every module a file imports, including under `if TYPE_CHECKING:`."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            found.add(node.module)
    return found


@pytest.mark.parametrize("module", ["templates.py", "messages.py"])
def test_the_template_code_knows_no_channel(module: str) -> None:
    channels = {
        m
        for m in _imports(RECEIVER / "delivery" / module)
        if m.startswith("receiver.delivery.channels")
    }
    assert channels == set()
