"""e2e only: attach every component's log to the report of a failing test."""

from __future__ import annotations

from collections.abc import Generator

import pytest

from tests.e2e._stack import Stack


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """On a failed test that used the stack, add the tail of each process log to its report."""
    report = yield
    stack = getattr(item, "funcargs", {}).get("stack")
    if report.failed and isinstance(stack, Stack):
        report.sections.append(("e2e component logs", stack.logs()))
    return report
