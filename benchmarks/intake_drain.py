"""Inbox drain under sustained overload: what the applier applies while `wrk` outruns it.

Per inbox setup (SQLite inbox file, PostgreSQL inbox table), a real receiver takes `wrk` at 32
connections for `--seconds`, every request a new alert group (a new incident, the worst-case
apply). Then the script counts incidents in the store until every accepted webhook is applied.
Printed per round, and as medians: accepted/s during the load, the backlog left when the load
stopped, how long it took to drain, and the applier's rate over load plus drain. Every webhook
answered 200 must be applied once: the final count is checked.

    .venv/bin/python benchmarks/intake_drain.py [--rounds 3] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import tempfile
import time
import urllib.request
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import psycopg
from common import free_port, median
from receiver_intake_wrk import LUA, postgres_db, process, receiver_argv, receiver_config, wrk
from receiver_soak import wait_ready

DRAIN_LIMIT = 600.0  # seconds: a drain this long is reported as a failure


def sqlite_counter(path: Path) -> Callable[[], int]:
    """Return a function counting the incidents in a SQLite store (read-only, WAL)."""

    def count() -> int:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            return int(db.execute("SELECT COUNT(*) FROM incidents").fetchone()[0])

    return count


def postgres_counter(dsn: str) -> Callable[[], int]:
    """Return a function counting the incidents in a PostgreSQL store."""

    def count() -> int:
        with psycopg.connect(dsn, autocommit=True) as conn:
            found = conn.execute("SELECT COUNT(*) FROM incidents").fetchone()
            assert found is not None
            return int(found[0])

    return count


def outcomes(url: str) -> dict[str, float]:
    """Return the receiver's webhook counts by outcome (accepted, then processed once applied)."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as answer:  # noqa: S310
        text = answer.read().decode()
    found = {}
    for line in text.splitlines():
        if line.startswith('maintwatch_receiver_webhooks_total{outcome="'):
            labels, value = line.rsplit(" ", 1)
            found[labels.split('"')[1]] = float(value)
    return found


def one_round(url: str, count: Callable[[], int], seconds: int, lua: Path) -> dict[str, float]:
    """Load for `seconds`, then wait for the backlog to drain; return the round's figures."""
    while (before := outcomes(url))["accepted"] > before["processed"]:
        time.sleep(0.05)  # the warm-up or the last round still applying
    incidents = count()
    started = time.monotonic()
    load = wrk(url, 32, seconds, lua)
    stopped = time.monotonic()

    # The receiver's own counters: wrk leaves uncounted the requests in flight at its end.
    def behind(found: dict[str, float]) -> float:
        return found["accepted"] - found["processed"]

    backlog = behind(outcomes(url))
    while (now := outcomes(url)) and behind(now) > 0:
        if time.monotonic() - stopped > DRAIN_LIMIT:
            raise RuntimeError(f"webhooks still unapplied after {DRAIN_LIMIT} s: {now}")
        time.sleep(0.05)
    drained = time.monotonic()
    accepted = now["accepted"] - before["accepted"]
    if count() - incidents != accepted:
        raise RuntimeError(f"{count() - incidents} incidents for {accepted} accepted webhooks")
    return {
        "accepted_per_s": load["rps"],
        "p99_ms": load["p99_ms"],
        "backlog": backlog,
        "drain_s": drained - stopped,
        "applied_per_s": accepted / (drained - started),
    }


def run_setup(
    setup: str, config: Path, count: Callable[[], int], rounds: int, seconds: int, lua: Path
) -> dict[str, Any]:
    """Run the rounds against one receiver; return the medians."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    found = []
    with process(receiver_argv(config, port)):
        asyncio.run(wait_ready(url))
        wrk(url, 4, 2, lua)  # warm-up, uncounted
        for _ in range(rounds):
            found.append(one_round(url, count, seconds, lua))
            r = found[-1]
            print(
                f"{setup:<16} accepted {r['accepted_per_s']:6.0f}/s p99 {r['p99_ms']:5.1f} ms | "
                f"backlog {r['backlog']:6.0f} drained in {r['drain_s']:5.1f} s | "
                f"applied {r['applied_per_s']:6.0f}/s",
                flush=True,
            )
    row: dict[str, Any] = {"setup": setup}
    for key in found[0]:
        row[key] = median([r[key] for r in found])
    return row


def main() -> None:
    """Parse flags, run both inbox setups, print rows and one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="mw-drain-") as tmp:
        work = Path(tmp)
        lua = work / "new_group.lua"
        lua.write_text(LUA)
        db = work / "inbox.db"
        config = receiver_config(work, f"{{type: sqlite, path: {db}}}", "inbox")
        rows.append(
            run_setup("sqlite inbox", config, sqlite_counter(db), args.rounds, args.seconds, lua)
        )
        if not args.skip_postgres:
            with postgres_db() as dsn:
                config = receiver_config(work, f"{{type: postgres, dsn: '{dsn}'}}", "inbox")
                counter = postgres_counter(dsn)
                rows.append(
                    run_setup("postgres inbox", config, counter, args.rounds, args.seconds, lua)
                )
    print(json.dumps({"rows": rows}))


if __name__ == "__main__":
    main()
