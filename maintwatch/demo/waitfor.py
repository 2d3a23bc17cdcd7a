"""`python -m maintwatch.demo.waitfor URL -- COMMAND...`: start COMMAND once URL answers 200.

supervisord starts programs in `priority` order but never waits for one to be ready. Prometheus
sends the always-firing Watchdog at its first rule evaluation; an Alertmanager still starting
then drops it (`prometheus_notifications_dropped_total`). So the demo runs Prometheus behind
this wait on Alertmanager's `/-/ready`, and the process becomes Prometheus itself (exec), so
supervisord's signals reach it unchanged.
"""

from __future__ import annotations

import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import NoReturn

WAIT = 60.0  # then start anyway: Prometheus retries later notifications, the demo goes on


def ready(url: str) -> bool:
    """Return whether `url` answers 200 now."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - the demo's own URL
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def wait(url: str, limit: float = WAIT) -> bool:
    """Poll `url` until it is ready (True) or `limit` seconds passed (False)."""
    deadline = time.monotonic() + limit
    while not ready(url):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Wait for the URL (at most WAIT seconds), then become the command."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 3 or args[1] != "--":
        sys.exit("usage: python -m maintwatch.demo.waitfor URL -- COMMAND...")
    url, command = args[0], args[2:]
    if not wait(url):
        print(f"waitfor: {url} not ready after {WAIT:.0f}s; starting anyway", file=sys.stderr)
    os.execv(command[0], command)  # noqa: S606 - an argument list, no shell involved


if __name__ == "__main__":
    main()
