"""Benchmark: load on the watched servers per hour — maintwatch vs Debian's three exporters.

Same world as scrape_compare.py. PostgreSQL is this machine's (5432): each contender logs in as
its own role, so `pg_stat_statements` calls/time and the CPU of its backends (/proc) are its
alone even though other test suites use the server. MariaDB and Redis global counters
(`Questions`, `Com_select`, `INFO commandstats`) and process CPU cannot be attributed on a
shared server, so they run as private instances on free ports for this benchmark.

Windows run one after the other at an accelerated interval (1 s instead of 15 s), per round
an idle window (nothing running: its median is subtracted from global counters), a maintwatch
window (its exporter refreshing on the same interval; paused with SIGSTOP outside its windows)
and a Debian window (the three exporters scraped every interval), order rotating per round.
Costs are per refresh/scrape cycle x 240 = per hour at 15 s; medians over rounds.

    .venv/bin/python benchmarks/server_load.py [--quick] [--rounds 3] [--window 25] [--json F]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import common
import psycopg
import pymysql
import redis
import scrape_compare

PER_HOUR = 3600 / 15  # cycles per hour at a 15 s scrape/refresh interval


def private_redis(tmp: Path, started: list[common.Service]) -> tuple[common.Service, int]:
    """Start a throw-away redis-server on a free port (no persistence)."""
    port = common.free_port()
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(tmp)]  # fmt: skip
    service = common.Service(f"redis-{port}", argv, tmp).start()
    started.append(service)
    poll(service, lambda: redis.Redis(host="127.0.0.1", port=port).ping())
    return service, port


def private_mariadb(tmp: Path, started: list[common.Service]) -> tuple[common.Service, int]:
    """Initialise a throw-away MariaDB data directory and start mariadbd on a free port."""
    port = common.free_port()
    data = tmp / "mariadb"
    common.run_checked(["mariadb-install-db", "--no-defaults", f"--datadir={data}", "--user=root",
                        "--auth-root-authentication-method=normal", "--skip-test-db"])  # fmt: skip
    argv = ["mariadbd", "--no-defaults", f"--datadir={data}", f"--port={port}",
            "--bind-address=127.0.0.1", f"--socket={data}/mysqld.sock", "--user=root",
            f"--pid-file={data}/mysqld.pid", "--skip-log-bin", "--skip-name-resolve",
            "--innodb-buffer-pool-size=32M", "--performance-schema=OFF"]  # fmt: skip
    service = common.Service(f"mariadb-{port}", argv, tmp).start()
    started.append(service)
    poll(service, lambda: pymysql.connect(host="127.0.0.1", port=port, user="root").close())
    return service, port


def poll(service: common.Service, check: Callable[[], object], timeout: float = 60) -> None:
    """Call `check` until it stops raising; fail with the service's output after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        service.check_alive()
        try:
            check()
            return
        except Exception as exc:  # any connection error means "not up yet" until the deadline
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{service.name} did not come up: {exc}\n{service.tail()}"
                ) from exc
        time.sleep(0.1)


class Meter:
    """Read the counters compared: per-role PostgreSQL, global MariaDB and Redis, process CPU."""

    def __init__(
        self, pg_db: str, mariadb: tuple[common.Service, int], rds: tuple[common.Service, int]
    ) -> None:
        self.pg = psycopg.connect(host="127.0.0.1", user="postgres", dbname=pg_db, autocommit=True)
        self.my = pymysql.connect(host="127.0.0.1", port=mariadb[1], user="root", autocommit=True)
        self.redis = redis.Redis(host="127.0.0.1", port=rds[1])
        self.pids = {"my": mariadb[0].pid, "redis": rds[0].pid}
        self.role = ""
        self.start: dict[str, float] = {}
        self.backends: dict[int, list[float]] = {}  # pid → [CPU at start, latest CPU]

    def close(self) -> None:
        """Close the three connections."""
        self.pg.close()
        self.my.close()
        self.redis.close()

    def begin(self, role: str, exporter_pids: list[int]) -> None:
        """Start counting: reset the role's statements, remember every counter."""
        self.role, self.exporter_pids = role, exporter_pids
        if role:
            self.pg.execute("SELECT pg_stat_statements_reset(%s::regrole::oid, 0, 0)", (role,))
        self.backends = {pid: [cpu, cpu] for pid, cpu in self._backend_cpu().items()}
        self.start = self._globals()

    def sample(self) -> None:
        """Record the CPU of the role's backends now (backends may come and go)."""
        for pid, cpu in self._backend_cpu().items():
            self.backends.setdefault(pid, [0.0, 0.0])[1] = cpu  # new: count its whole life

    def end(self) -> dict[str, float]:
        """Return every counter's change since begin()."""
        self.sample()
        now = self._globals()
        out = {key: now[key] - self.start[key] for key in now}
        out["pg_backend_cpu_s"] = sum(latest - first for first, latest in self.backends.values())
        out["pg_calls"], out["pg_exec_ms"] = self._statements()
        return out

    def _globals(self) -> dict[str, float]:
        with self.my.cursor() as cur:
            cur.execute("SHOW GLOBAL STATUS WHERE Variable_name IN ('Questions', 'Com_select')")
            status = {name: float(value) for name, value in cur.fetchall()}
        # redis-py types info() as sync-or-async; this client is the sync one.
        stats = cast(dict[str, dict[str, float]], self.redis.info("commandstats"))
        return {
            "my_questions": status["Questions"],
            "my_com_select": status["Com_select"],
            "my_cpu_s": common.proc_cpu_seconds(self.pids["my"]),
            "redis_calls": float(sum(v["calls"] for v in stats.values())),
            "redis_usec": float(sum(v["usec"] for v in stats.values())),
            "redis_cpu_s": common.proc_cpu_seconds(self.pids["redis"]),
            "exporter_cpu_s": sum(common.proc_cpu_seconds(p) for p in self.exporter_pids),
        }

    def _backend_cpu(self) -> dict[int, float]:
        if not self.role:
            return {}
        rows = self.pg.execute("SELECT pid FROM pg_stat_activity WHERE usename = %s", (self.role,))
        out: dict[int, float] = {}
        for (pid,) in rows.fetchall():
            with contextlib.suppress(OSError):  # the backend exited since the query
                out[pid] = common.proc_cpu_seconds(pid)
        return out

    def _statements(self) -> tuple[float, float]:
        if not self.role:
            return 0.0, 0.0
        row = self.pg.execute(
            "SELECT coalesce(sum(calls), 0), coalesce(sum(total_exec_time + total_plan_time), 0)"
            " FROM pg_stat_statements WHERE userid = %s::regrole::oid",
            (self.role,),
        ).fetchone()
        assert row is not None
        return float(row[0]), float(row[1])


def window(
    meter: Meter, role: str, exporters: list[scrape_compare.Contender], ticks: int, interval: float
) -> dict[str, float]:
    """Scrape `exporters` every `interval` for `ticks` ticks; return the counters' changes."""
    scrapers = [common.Scraper(c.port) for c in exporters]
    try:
        meter.begin(role, [c.service.pid for c in exporters])
        began = time.monotonic()
        for tick in range(ticks):
            for scraper in scrapers:
                scraper.timed()
            meter.sample()
            time.sleep(max(0.0, began + (tick + 1) * interval - time.monotonic()))
        return meter.end()
    finally:
        for scraper in scrapers:
            scraper.close()


def ours_window(
    meter: Meter, ours: scrape_compare.Contender, role: str, ticks: int, interval: float
) -> dict[str, float]:
    """Resume maintwatch, let its catch-up refresh pass, measure `ticks` refreshes, pause it."""
    os.kill(ours.service.pid, signal.SIGCONT)
    try:
        # Refreshes then start at resume + k*interval: exactly `ticks` of them fall in the window.
        time.sleep(interval / 2)
        return window(meter, role, [ours], ticks, interval)
    finally:
        os.kill(ours.service.pid, signal.SIGSTOP)


GLOBAL = ("my_questions", "my_com_select", "my_cpu_s", "redis_calls", "redis_usec", "redis_cpu_s")


def per_hour(
    windows: list[dict[str, float]], idle: dict[str, float], ticks: int
) -> dict[str, float]:
    """Subtract the idle baseline from global counters, scale per cycle to per hour, median."""
    scaled = [
        {k: (v - idle[k] if k in GLOBAL else v) / ticks * PER_HOUR for k, v in w.items()}
        for w in windows
    ]
    return {k: round(common.median([s[k] for s in scaled]), 3) for k in scaled[0]}


def measure(args: argparse.Namespace, tmp: Path, stack: contextlib.ExitStack) -> dict[str, Any]:
    """Set up private servers and the world, run the windows, return per-hour costs."""
    # Cleanup runs in reverse: exporters stop, then the world is dropped, then the servers stop.
    servers = stack.enter_context(common.services())
    mariadb, rds = private_mariadb(tmp, servers), private_redis(tmp, servers)
    world = scrape_compare.enter_world(stack, tmp, mariadb[1], rds[1], args.queues, args.sets)
    started = stack.enter_context(common.services())
    contenders = scrape_compare.start_contenders(
        world, mariadb[1], rds[1], f"{args.interval}s", started
    )
    ours, debian = contenders[0], contenders[1:]
    os.kill(ours.service.pid, signal.SIGSTOP)
    meter = Meter(world.pg_roles["ours"], mariadb, rds)
    stack.callback(meter.close)
    ticks = max(1, round(args.window / args.interval))
    runs = run_rounds(meter, ours, debian, world, ticks, args)
    idle = {k: common.median([w[k] for w in runs["idle"]]) for k in runs["idle"][0]}
    return {
        "per_hour": {n: per_hour(w, idle, ticks) for n, w in runs.items() if w and n != "idle"},
        "debian_exporters": [c.name for c in debian],
        "idle_windows": runs["idle"], "ticks": ticks, "interval_s": args.interval,
        "rounds": args.rounds, "machine": common.machine(),
    }  # fmt: skip


def run_rounds(
    meter: Meter,
    ours: scrape_compare.Contender,
    debian: list[scrape_compare.Contender],
    world: scrape_compare.World,
    ticks: int,
    args: argparse.Namespace,
) -> dict[str, list[dict[str, float]]]:
    """Run an idle, a maintwatch and a Debian window per round, rotating their order."""
    runs: dict[str, list[dict[str, float]]] = {"idle": [], "maintwatch": [], "debian": []}
    kinds = ["idle", "maintwatch", "debian"]
    for rnd in range(args.rounds):
        for name in kinds[rnd % 3 :] + kinds[: rnd % 3]:
            if name == "idle":
                runs[name].append(window(meter, "", [], ticks, args.interval))
            elif name == "maintwatch":
                role = world.pg_roles["ours"]
                runs[name].append(ours_window(meter, ours, role, ticks, args.interval))
            elif debian:
                role = world.pg_roles["pgexp"]
                runs[name].append(window(meter, role, debian, ticks, args.interval))
    return runs


ROWS = [
    ("PostgreSQL statements", "pg_calls", "{:.0f}"),
    ("PostgreSQL exec+plan ms", "pg_exec_ms", "{:.0f}"),
    ("PostgreSQL backend CPU s", "pg_backend_cpu_s", "{:.2f}"),
    ("MariaDB Questions", "my_questions", "{:.0f}"),
    ("MariaDB Com_select", "my_com_select", "{:.0f}"),
    ("MariaDB server CPU s", "my_cpu_s", "{:.2f}"),
    ("Redis commands", "redis_calls", "{:.0f}"),
    ("Redis command usec", "redis_usec", "{:.0f}"),
    ("Redis server CPU s", "redis_cpu_s", "{:.2f}"),
    ("exporter process CPU s", "exporter_cpu_s", "{:.2f}"),
]


def report(result: dict[str, Any]) -> None:
    """Print per-hour costs side by side."""
    hours = result["per_hour"]
    print(
        f"per hour at 15 s (measured at {result['interval_s']} s: {result['ticks']} cycles per"
        f" window, median of {result['rounds']} rounds; global counters minus idle windows)"
    )
    print(f"{'per hour':<28}{'maintwatch':>12}{'Debian x3':>12}")
    for label, key, fmt in ROWS:
        theirs = fmt.format(hours["debian"][key]) if "debian" in hours else "n/a"
        print(f"{label:<28}{fmt.format(hours['maintwatch'][key]):>12}{theirs:>12}")


def main() -> None:
    """Parse flags, run, print, optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny sizes, seconds")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--window", type=float, default=25.0, help="seconds per window")
    parser.add_argument("--interval", type=float, default=1.0, help="accelerated interval, s")
    parser.add_argument("--queues", type=int, default=200)
    parser.add_argument("--sets", type=int, default=10)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.window, args.interval, args.queues, args.sets = 1, 2.0, 0.5, 10, 2
    with (
        tempfile.TemporaryDirectory(prefix="mw-load-bench-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        result = measure(args, Path(tmp), stack)
    report(result)
    if args.json:
        common.write_json(args.json, result)


if __name__ == "__main__":
    common.be_nice()
    main()
