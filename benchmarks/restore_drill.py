"""Benchmark: a restore drill vs seed 000's own `gunzip < dump | mariadb db`, same file, same run.

Writes a mariadb-dump-shaped `.sql.gz` (extended INSERTs into one table, the tool's header and
trailer) of `--size-mb` MB of SQL, then, alternating which goes first, `--runs` times:

- baseline: `CREATE DATABASE`, `gunzip < dump | mariadb db`, `SELECT COUNT(*)` (seed 000
  § Backup Verification, step by step), timed from the CREATE to the count;
- maintwatch: one drill (`exporter.drills.Drill`) of the same file into its scratch database,
  its recorded duration (scratch created → restored → rows counted), at its default low
  priority (client under nice 10 / ionice idle);
- maintwatch at normal priority (`low_priority: false`): the cost of the streaming alone.

Then the scrape latency of a running exporter (one backup set with that drill, `state_dir` in a
temp dir) is measured with `wrk` for `--wrk-seconds` while idle and while its drill runs.
Prints medians and ratios; `--json FILE` writes them. Drops every database it made.

    .venv/bin/python benchmarks/restore_drill.py [--size-mb 500] [--runs 3] [--wrk-seconds 10]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import common
import pymysql
from isal import isal_zlib

from exporter.drills import Drill, DrillStore, RestoreConfig, Target

HEAD = (
    "-- MariaDB dump 10.19  Distrib 10.11.6-MariaDB, for debian-linux-gnu (x86_64)\n--\n"
    "-- Host: localhost    Database: shop\n"
    "/*!40101 SET NAMES utf8mb4 */;\n/*!40014 SET @OLD_UNIQUE_CHECKS=@@UNIQUE_CHECKS,"
    " UNIQUE_CHECKS=0 */;\n"
    "DROP TABLE IF EXISTS `orders`;\n"
    "CREATE TABLE `orders` (`id` int NOT NULL, `customer` varchar(64) NOT NULL,"
    " `note` varchar(255) NOT NULL, `total` decimal(10,2) NOT NULL, `ref` char(16) NOT NULL,"
    " PRIMARY KEY (`id`)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;\n"
    "LOCK TABLES `orders` WRITE;\n/*!40000 ALTER TABLE `orders` DISABLE KEYS */;\n"
)
TAIL = (
    "/*!40000 ALTER TABLE `orders` ENABLE KEYS */;\nUNLOCK TABLES;\n"
    "-- Dump completed on 2025-05-01 12:00:00\n"
)
STATEMENT = 1 << 20  # mariadb-dump's extended INSERTs are up to net_buffer_length (1 MiB)
MY = {"host": "127.0.0.1", "port": 3306, "user": "root"}


def insert(rnd: random.Random, first_id: int, words: list[str]) -> tuple[bytes, int]:
    """Return one extended INSERT of ~1 MiB and how many rows it holds."""
    rows, size, i = [], 0, first_id
    while size < STATEMENT:
        row = (
            f"({i},'{rnd.choice(words)}','{rnd.choice(words)} {rnd.choice(words)}',"
            f"{rnd.random() * 1000:.2f},'{rnd.randbytes(8).hex()}')"
        )
        rows.append(row)
        size += len(row) + 1
        i += 1
    # Why S608 is ignored: dump file content for the benchmark, built from its own numbers.
    statement = f"INSERT INTO `orders` VALUES {','.join(rows)};\n"  # noqa: S608
    return statement.encode(), i - first_id


def make_dump(path: Path, size_mb: int) -> tuple[int, int]:
    """Write the .sql.gz; return (uncompressed bytes, rows)."""
    rnd = random.Random(7)
    words = [rnd.randbytes(rnd.randint(3, 9)).hex() for _ in range(4000)]
    comp = isal_zlib.compressobj(2, isal_zlib.DEFLATED, 31)
    raw, rows = 0, 0
    with path.open("wb") as out:
        for chunk in (HEAD.encode(),):
            out.write(comp.compress(chunk))
            raw += len(chunk)
        while raw < size_mb << 20:
            block, n = insert(rnd, rows, words)
            out.write(comp.compress(block))
            raw, rows = raw + len(block), rows + n
        out.write(comp.compress(TAIL.encode()) + comp.flush())
    return raw + len(TAIL), rows


def sql(statement: str, database: str | None = None) -> Any:
    """Run one statement as root; return the first row."""
    conn = pymysql.connect(**MY, database=database, autocommit=True)  # type: ignore[arg-type]
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
            return cur.fetchone()
    finally:
        conn.close()


def baseline(dump: Path, db: str) -> float:
    """Time the seed's procedure: create, `gunzip < dump | mariadb db`, count."""
    started = time.perf_counter()
    sql(f"CREATE DATABASE `{db}`")
    with dump.open("rb") as src:
        gunzip = subprocess.Popen(["gunzip"], stdin=src, stdout=subprocess.PIPE)
        assert gunzip.stdout is not None
        argv = ["mariadb", "-h127.0.0.1", "-uroot", db]
        subprocess.run(argv, stdin=gunzip.stdout, check=True)
        gunzip.stdout.close()
        if gunzip.wait() != 0:
            raise RuntimeError("gunzip failed")
    sql("SELECT COUNT(*) FROM orders", db)
    seconds = time.perf_counter() - started
    sql(f"DROP DATABASE `{db}`")
    return seconds


def drill_config(db: str, low_priority: bool = True) -> dict[str, Any]:
    """Return the `restore:` section used by both the direct drill and the exporter."""
    return {
        "engine": "mariadb",
        "scratch": {"dsn": f"mysql://root@127.0.0.1:3306/{db}"},
        "tables": {"orders": 1},
        "timeout": "2h",
        "every": "30d",
        "low_priority": low_priority,
    }


def drill(dump: Path, db: str, state: Path, low_priority: bool = True) -> tuple[float, int]:
    """Run one drill; return (recorded duration, restored bytes)."""
    config = RestoreConfig.model_validate(drill_config(db, low_priority))
    result = Drill("bench", config, DrillStore(str(state), "bench", time.time())).run(
        Target(str(dump)), threading.Event()
    )
    if not result.ok:
        raise RuntimeError(f"drill failed: {result.reason}")
    return result.duration, result.restored_bytes


def wrk(url: str, seconds: int) -> dict[str, float]:
    """Load `url` with wrk (1 thread, 2 connections); return p50/p99 ms and requests/s."""
    argv = ["wrk", "-t1", "-c2", f"-d{seconds}s", "--latency", url]
    out = common.run_checked(argv, timeout=seconds + 60)

    def ms(label: str) -> float:
        match = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)$", out, re.MULTILINE)
        assert match is not None, out
        factor = {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)]
        return float(match.group(1)) * factor

    rps = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.MULTILINE)
    assert rps is not None, out
    return {"p50_ms": ms("50%"), "p99_ms": ms("99%"), "rps": float(rps.group(1))}


def exporter_config(root: Path, dump_dir: Path, db: str) -> Path:
    """Write an exporter config with one set and its drill (not due until the state says so)."""
    config = {
        "state_dir": str(root / "exporter-state"),
        "defaults": {"interval": "1s", "timeout": "1s"},
        "backups": [
            {
                "name": "bench",
                "directory": str(dump_dir),
                "glob": "*.sql.gz",
                "settle": "0s",
                "verify": "none",
                "restore": drill_config(db),
            }
        ],
    }
    path = root / "exporter.yml"
    path.write_text(json.dumps(config))
    return path


def set_state(state_file: Path, last: dict[str, Any] | None) -> None:
    """Write the drill state: a recent result (not due) or none (due at the next refresh)."""
    state_file.parent.mkdir(parents=True, exist_ok=True)
    data = {"since": time.time(), "last": last, "last_success": None, "previous": None}
    state_file.write_text(json.dumps({**data, "running": None}))


def wait_up(url: str, service: common.Service) -> None:
    """Wait until the exporter answers and has refreshed once."""
    deadline = time.monotonic() + 60
    while subprocess.run(["curl", "-sf", url], capture_output=True, check=False).returncode:
        service.check_alive()
        if time.monotonic() > deadline:
            raise RuntimeError(f"exporter not up:\n{service.tail()}")
        time.sleep(0.2)
    time.sleep(2)


def drill_running(port: int) -> bool:
    """Return whether the exporter says its drill runs."""
    body = common.run_checked(["curl", "-s", f"http://127.0.0.1:{port}/metrics"])
    return 'maintwatch_backup_drill_running{backup="bench"} 1.0' in body


def scrape_during_drill(
    root: Path, dump: Path, dbs: tuple[str, str], seconds: int
) -> dict[str, Any]:
    """Measure scrape latency with wrk: idle, beside the seed's pipeline, during a drill.

    The pipeline runs outside the exporter, so it costs the scrapes only the machine's CPU and
    disk; the difference to the drill's row is what running the drill in-process adds.
    """
    base_db, db = dbs
    port = common.free_port()
    config = exporter_config(root, dump.parent, db)
    state_file = root / "exporter-state" / "drills" / "bench.json"
    recent = {"ok": True, "reason": "", "file": str(dump), "started": time.time(),
              "finished": time.time(), "duration": 1.0}  # fmt: skip
    set_state(state_file, recent)
    exporter = str(common.VENV_BIN / "maintwatch-exporter")
    argv = [exporter, "--config.file", str(config), "--web.listen-address", f"127.0.0.1:{port}"]
    with common.services() as started:
        started.append(common.Service("exporter", argv, root).start())
        url = f"http://127.0.0.1:{port}/metrics"
        wait_up(url, started[0])
        idle = wrk(url, seconds)
        pipeline = threading.Thread(target=baseline, args=(dump, base_db))
        pipeline.start()
        time.sleep(3)
        beside = wrk(url, seconds)
        beside_running = pipeline.is_alive()
        pipeline.join()
        set_state(state_file, None)  # due: the next refresh starts the drill
        deadline = time.monotonic() + 60
        while not drill_running(port):
            if time.monotonic() > deadline:
                raise RuntimeError("the exporter's drill did not start")
            time.sleep(0.2)
        busy = wrk(url, seconds)
        still = drill_running(port)
        while drill_running(port):
            time.sleep(1)
    return {
        "idle": idle,
        "pipeline": beside,
        "drill": busy,
        "pipeline_running_throughout": beside_running,
        "drill_running_throughout": still,
    }


def timed_restores(
    dump: Path, dbs: tuple[str, str], state: Path, runs: int
) -> dict[str, list[float]]:
    """Time the seed's pipeline, a drill, and a drill at normal priority, rotating the order."""
    base_db, drill_db = dbs
    times: dict[str, list[float]] = {"base": [], "drill": [], "normal": []}
    contenders = {
        "base": lambda: baseline(dump, base_db),
        "drill": lambda: drill(dump, drill_db, state)[0],
        "normal": lambda: drill(dump, drill_db, state, low_priority=False)[0],
    }
    names = list(contenders)
    for run in range(runs):
        for which in names[run % 3 :] + names[: run % 3]:  # rotate who goes first
            times[which].append(contenders[which]())
        last = ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items())
        print(f"run {run + 1}: {last}")
    if runs:
        base, ours = common.median(times["base"]), common.median(times["drill"])
        normal = common.median(times["normal"])
        print(
            f"median: gunzip|mariadb {base:.2f} s, drill {ours:.2f} s ({ours / base:.2f}x),"
            f" drill at normal priority {normal:.2f} s ({normal / base:.2f}x)"
        )
    return times


def main() -> int:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mb", type=int, default=500, help="MB of SQL in the dump")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--wrk-seconds", type=int, default=10)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    for binary in ("mariadb", "gunzip", "wrk", "curl"):
        if shutil.which(binary) is None:
            print(f"{binary} is not installed", file=sys.stderr)
            return 2
    tag = uuid.uuid4().hex[:8]
    base_db, drill_db = f"mwbench_{tag}_base", f"mwbench_{tag}_drill"
    root = Path(tempfile.mkdtemp(prefix="mw-drill-"))
    try:
        dump_dir = root / "dumps"
        dump_dir.mkdir()
        dump = dump_dir / "shop_20250501120000.sql.gz"
        raw, rows = make_dump(dump, args.size_mb)
        print(f"dump: {raw >> 20} MB SQL, {dump.stat().st_size >> 20} MB gzip, {rows} rows")
        times = timed_restores(dump, (base_db, drill_db), root / "state", args.runs)
        scrape = scrape_during_drill(root, dump, (base_db, drill_db), args.wrk_seconds)
        for phase in ("idle", "pipeline", "drill"):
            got = scrape[phase]
            print(f"scrape {phase}: p50 {got['p50_ms']:.2f} / p99 {got['p99_ms']:.2f} ms")
        result = {
            "size_mb": raw >> 20,
            "gzip_mb": dump.stat().st_size >> 20,
            "rows": rows,
            "baseline_s": times["base"],
            "drill_s": times["drill"],
            "drill_normal_s": times["normal"],
            "scrape": scrape,
            "machine": common.machine(),
        }
        if args.json:
            args.json.write_text(json.dumps(result, indent=1))
    finally:
        for db in (base_db, drill_db):
            sql(f"DROP DATABASE IF EXISTS `{db}`")
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
