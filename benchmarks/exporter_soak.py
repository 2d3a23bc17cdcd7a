"""Exporter soak: the real exporter process, every collector enabled, scraped every second.

Builds a world on this machine (backup sets that rotate, Redis queues under a unique prefix,
PostgreSQL and MariaDB databases of their own with Laravel's tables, a TLS endpoint and a
certificate file, an HTTP health endpoint, an app dir with a growing and rotating log, a slow
query log, supervisord with two programs), runs `python -m exporter` against it, scrapes
/metrics every second and samples, every `--sample` seconds, the exporter's RSS, open fds and
threads (/proc) and its server-side connections (pg_stat_activity by application_name and
database; the MariaDB processlist by database). Prints start / middle / end and a verdict:
"flat" when the last quarter's median is within tolerance of the first quarter's.

Run: .venv/bin/python benchmarks/exporter_soak.py [--minutes 60] [--sample 10] [--interval 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import os
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import psycopg
import pymysql
import redis
import trustme
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
PG_DDL = [
    'create table "jobs" ("id" bigserial primary key, "queue" varchar(255) not null,'
    ' "payload" text not null, "attempts" smallint not null, "reserved_at" integer null,'
    ' "available_at" integer not null, "created_at" integer not null)',
    'create table "failed_jobs" ("id" bigserial primary key, "uuid" varchar(255) not null unique,'
    ' "connection" text not null, "queue" text not null, "payload" text not null,'
    ' "exception" text not null, "failed_at" timestamp(0) not null default CURRENT_TIMESTAMP)',
]
MY_DDL = [
    "create table `jobs` (`id` bigint unsigned auto_increment primary key,"
    " `queue` varchar(255) not null, `payload` longtext not null,"
    " `attempts` tinyint unsigned not null, `reserved_at` int unsigned null,"
    " `available_at` int unsigned not null, `created_at` int unsigned not null)",
    "create table `failed_jobs` (`id` bigint unsigned auto_increment primary key,"
    " `uuid` varchar(255) not null unique, `connection` text not null, `queue` text not null,"
    " `payload` longtext not null, `exception` longtext not null,"
    " `failed_at` timestamp not null default CURRENT_TIMESTAMP)",
]
SUPERVISORD = """[unix_http_server]
file=%(here)s/s.sock
[supervisord]
logfile=%(here)s/supervisord.log
pidfile=%(here)s/supervisord.pid
nodaemon=true
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
[program:worker]
process_name=%(program_name)s_%(process_num)02d
command={py} -S -c "import time; time.sleep(86400)"
numprocs=2
startsecs=0
[program:scheduler]
command={py} -S -c "import time; time.sleep(86400)"
startsecs=0
"""


@dataclass
class Sample:
    """One measurement of the exporter process and its server-side footprint."""

    at: float
    rss_mb: float
    fds: int
    threads: int
    pg_conns: int
    my_conns: int


@dataclass
class World:
    """Paths, names and ports of the soak's sources."""

    root: Path
    name: str  # database name and Redis prefix stem
    tls_port: int = 0
    http_port: int = 0
    scrapes: int = 0
    scrape_errors: int = 0
    down: set[str] = field(default_factory=set)  # instances seen with collector_up 0
    samples: list[Sample] = field(default_factory=list)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def databases(name: str) -> Iterator[None]:
    """Create PostgreSQL and MariaDB databases `name` with Laravel's tables; drop them after."""
    with psycopg.connect(host="127.0.0.1", user="postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"'.encode())
    with psycopg.connect(host="127.0.0.1", user="postgres", dbname=name, autocommit=True) as c:
        for ddl in PG_DDL:
            c.execute(ddl.encode())  # fixed DDL
    my = pymysql.connect(host="127.0.0.1", user="root", autocommit=True)
    with my.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}`")
        cur.execute(f"USE `{name}`")
        for ddl in MY_DDL:
            cur.execute(ddl)
    my.close()
    try:
        yield
    finally:
        my = pymysql.connect(host="127.0.0.1", user="root", autocommit=True)
        with my.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        my.close()
        with psycopg.connect(host="127.0.0.1", user="postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


@contextlib.contextmanager
def supervisord(directory: Path) -> Iterator[Path]:
    """Run supervisord with two programs; yield its socket path."""
    conf = directory / "supervisord.conf"
    conf.write_text(SUPERVISORD.format(py=sys.executable))
    proc = subprocess.Popen(
        [shutil.which("supervisord") or "supervisord", "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    sock = directory / "s.sock"
    try:
        deadline = time.monotonic() + 30
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        yield sock
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def dump(path: Path, rows: int, age: float) -> None:
    # Why S608 is ignored: dump file content written to disk, never run against a database.
    body = "".join(f"INSERT INTO t VALUES ({i},'row {i}');\n" for i in range(rows))  # noqa: S608
    text = f"-- MariaDB dump 10.19\n{body}\n-- Dump completed on 2025-05-01 12:00:00\n"
    path.write_bytes(gzip.compress(text.encode()))
    os.utime(path, (time.time() - age, time.time() - age))


def write_world(w: World, socket_path: Path, interval: float) -> Path:
    """Create the files and the exporter config; return the config path."""
    r = w.root
    for d in ("backups", "app/storage/logs", "app/storage/framework", "mysql", "certs", "state"):
        (r / d).mkdir(parents=True, exist_ok=True)
    for i in range(5):
        dump(r / "backups" / f"soak_{i:04d}.sql.gz", 2000, (5 - i) * 3600)
    (r / "app/storage/logs/laravel.log").write_text("")
    (r / "mysql/slow.log").write_text("")
    redis_url = "redis://127.0.0.1:6379/0"
    config = f"""
defaults: {{interval: {interval}s, timeout: {interval}s}}
state_dir: {r}/state
backups:
  - {{name: soak, directory: {r}/backups, glob: "soak_*.sql.gz", settle: 0s}}
redis:
  - {{name: soak, url: "{redis_url}", prefix: "{w.name}:", queues: [default, mail]}}
databases:
  - {{name: pg, driver: postgres, dsn: "postgresql://postgres@127.0.0.1/{w.name}",
      failed_jobs: true, queue_table: true}}
  - {{name: my, driver: mysql, dsn: "mysql://root@127.0.0.1/{w.name}", failed_jobs: true}}
supervisor:
  - {{name: soak, url: "unix://{socket_path}"}}
tls:
  - {{name: endpoint, endpoint: "127.0.0.1:{w.tls_port}", server_name: localhost,
      ca_file: {r}/certs/ca.pem}}
  - {{name: file, path: {r}/certs/cert.pem, ca_file: {r}/certs/ca.pem}}
http:
  - {{name: health, url: "http://127.0.0.1:{w.http_port}/health"}}
apps:
  - {{name: portal, path: {r}/app, logs: [{{path: storage/logs/laravel.log}}]}}
slowlog:
  - {{name: my, path: {r}/mysql/slow.log}}
"""
    path = r / "exporter.yml"
    path.write_text(config)
    return path


@contextlib.asynccontextmanager
async def endpoints(w: World) -> AsyncIterator[None]:
    """Serve a TLS endpoint (trustme CA) and an HTTP health endpoint in this process."""
    (w.root / "certs").mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    ca.cert_pem.write_to_path(str(w.root / "certs/ca.pem"))
    cert.cert_chain_pems[0].write_to_path(str(w.root / "certs/cert.pem"))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(context)

    async def tls_handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await reader.read()
        writer.close()

    tls = await asyncio.start_server(tls_handler, "127.0.0.1", 0, ssl=context)
    w.tls_port = tls.sockets[0].getsockname()[1]

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/health", health)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    w.http_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", w.http_port).start()
    try:
        yield
    finally:
        await runner.cleanup()
        tls.close()


def proc_numbers(pid: int) -> tuple[float, int, int]:
    """Return (RSS MB, open fds, threads) of a process."""
    rss, threads = 0.0, 0
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    return rss, len(os.listdir(f"/proc/{pid}/fd")), threads


def server_connections(name: str) -> tuple[int, int]:
    """Return the exporter's sessions on PostgreSQL and MariaDB (by application/database)."""
    with psycopg.connect(host="127.0.0.1", user="postgres", autocommit=True) as c:
        row = c.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s"
            " AND application_name = 'maintwatch'",
            (name,),
        ).fetchone()
    pg = int(row[0]) if row else 0
    my = pymysql.connect(host="127.0.0.1", user="root", autocommit=True)
    with my.cursor() as cur:
        cur.execute("SELECT count(*) FROM information_schema.processlist WHERE db = %s", (name,))
        got = cur.fetchone()
    my.close()
    return pg, int(got[0]) if got else 0


async def workload(w: World, stop: asyncio.Event) -> None:
    """Keep the sources alive: log lines, slow entries, jobs, failed jobs, rotations."""
    r, tick = w.root, 0
    client = redis.Redis(host="127.0.0.1", port=6379)
    log = r / "app/storage/logs/laravel.log"
    try:
        while not stop.is_set():
            tick += 1
            with log.open("a") as fh:
                for i in range(5):
                    level = ("INFO", "ERROR", "WARNING")[i % 3]
                    fh.write(f"[2025-05-01 12:00:00] production.{level}: tick {tick} #{i}\n")
            with (r / "mysql/slow.log").open("a") as fh:
                fh.write(
                    "# Time: 250501 12:00:03\n# User@Host: a[a] @ localhost []\n"
                    f"# Query_time: {0.1 * (tick % 30):.6f}  Lock_time: 0.0  Rows_sent: 1"
                    f"  Rows_examined: 0\nSET timestamp=1746100803;\nSELECT {tick};\n"
                )
            client.rpush(f"{w.name}:queues:default", json.dumps({"createdAt": int(time.time())}))
            if tick % 2 == 0:
                client.lpop(f"{w.name}:queues:default")
            if tick % 30 == 0:
                await asyncio.to_thread(failed_job, w.name, tick)
            if tick % 120 == 0:
                await asyncio.to_thread(rotate, r, tick)
            await asyncio.sleep(1)
    finally:
        client.close()


def failed_job(name: str, tick: int) -> None:
    values = (str(uuid.uuid4()), "redis", "default", "{}", "RuntimeException")
    with psycopg.connect(host="127.0.0.1", user="postgres", dbname=name, autocommit=True) as c:
        c.execute(
            "INSERT INTO failed_jobs (uuid, connection, queue, payload, exception)"
            " VALUES (%s, %s, %s, %s, %s)",
            values,
        )
    my = pymysql.connect(host="127.0.0.1", user="root", database=name, autocommit=True)
    with my.cursor() as cur:
        cur.execute(
            "INSERT INTO failed_jobs (uuid, connection, queue, payload, exception)"
            " VALUES (%s, %s, %s, %s, %s)",
            values,
        )
    my.close()


def rotate(root: Path, tick: int) -> None:
    """Every two minutes: a new backup replaces the oldest; the app log is rotated by rename."""
    backups = sorted((root / "backups").glob("soak_*.sql.gz"))
    dump(root / "backups" / f"soak_{tick:06d}.sql.gz", 2000, 0)
    backups[0].unlink()
    log = root / "app/storage/logs/laravel.log"
    log.rename(log.with_name(f"laravel-{tick}.log"))
    log.write_text("")
    for old in sorted(log.parent.glob("laravel-*.log"))[:-2]:
        old.unlink()


async def scraper(w: World, url: str, stop: asyncio.Event) -> None:
    async with aiohttp.ClientSession() as http:
        while not stop.is_set():
            w.scrapes += 1
            try:
                async with http.get(url) as resp:
                    body = await resp.text()
                    w.scrape_errors += resp.status != 200
                w.down |= {
                    line.split("{", 1)[1].split("}", 1)[0]
                    for line in body.splitlines()
                    if line.startswith("maintwatch_collector_up{") and line.endswith(" 0.0")
                }
            except aiohttp.ClientError:
                w.scrape_errors += 1
            await asyncio.sleep(1)


async def sampler(w: World, pid: int, every: float, stop: asyncio.Event) -> None:
    start = time.monotonic()
    while not stop.is_set():
        rss, fds, threads = proc_numbers(pid)
        pg, my = await asyncio.to_thread(server_connections, w.name)
        w.samples.append(Sample(time.monotonic() - start, rss, fds, threads, pg, my))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)


async def wait_ready(url: str, proc: subprocess.Popen[bytes], deadline: float = 60) -> None:
    end = time.monotonic() + deadline
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < end:
            if proc.poll() is not None:
                raise SystemExit(f"exporter exited with {proc.returncode}")
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(url) as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.2)
    raise SystemExit("exporter never became ready")


TOLERANCE = {"rss_mb": (1.10, 2.0), "fds": (1.0, 2), "threads": (1.0, 2), "pg_conns": (1.0, 0),
             "my_conns": (1.0, 0)}  # fmt: skip  # (ratio, absolute slack) allowed for "flat"


def report(w: World, minutes: float) -> bool:
    """Print the start / middle / end table and the verdict; return True when flat."""
    s = w.samples
    rows = [("start", s[0]), ("middle", s[len(s) // 2]), ("end", s[-1])]
    print(f"\nexporter soak: {minutes:g} min, {w.scrapes} scrapes, {w.scrape_errors} not 200")
    print(f"instances ever down: {sorted(w.down) or 'none'}")
    print(f"{'':8}{'t (s)':>8}{'RSS MB':>9}{'fds':>6}{'threads':>9}{'PG conns':>10}{'MariaDB':>9}")
    for label, x in rows:
        print(
            f"{label:8}{x.at:8.0f}{x.rss_mb:9.1f}{x.fds:6d}{x.threads:9d}"
            f"{x.pg_conns:10d}{x.my_conns:9d}"
        )
    quarter = max(1, len(s) // 4)
    flat = w.scrape_errors == 0 and not w.down
    for key, (ratio, slack) in TOLERANCE.items():
        first = statistics.median(getattr(x, key) for x in s[:quarter])
        last = statistics.median(getattr(x, key) for x in s[-quarter:])
        ok = last <= first * ratio + slack
        flat &= ok
        print(f"  {key:9} first-quarter median {first:8.1f}  last-quarter {last:8.1f}  "
              f"{'flat' if ok else 'GROWING'}")  # fmt: skip
    print(f"verdict: {'flat' if flat else 'NOT flat'}")
    return flat


async def soak(args: argparse.Namespace) -> bool:
    w = World(Path(tempfile.mkdtemp(prefix="mwsoak")), "mwsoak" + uuid.uuid4().hex[:8])
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        with databases(w.name), supervisord(w.root) as sock:
            async with endpoints(w):
                config = write_world(w, sock, args.interval)
                proc = subprocess.Popen(
                    [sys.executable, "-m", "exporter", f"--config.file={config}",
                     f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                    cwd=ROOT, stderr=open(w.root / "exporter.log", "wb"),  # noqa: SIM115 -- closed with the process
                )  # fmt: skip
                try:
                    await wait_ready(url.replace("/metrics", "/-/ready"), proc)
                    stop = asyncio.Event()
                    tasks = [
                        asyncio.create_task(workload(w, stop)),
                        asyncio.create_task(scraper(w, url, stop)),
                        asyncio.create_task(sampler(w, proc.pid, args.sample, stop)),
                    ]
                    await asyncio.sleep(args.minutes * 60)
                    stop.set()
                    await asyncio.gather(*tasks)
                finally:
                    proc.terminate()
                    proc.wait(timeout=30)
                    _redis_cleanup(w.name)
        return report(w, args.minutes)
    finally:
        shutil.rmtree(w.root, ignore_errors=True)


def _redis_cleanup(name: str) -> None:
    client = redis.Redis(host="127.0.0.1", port=6379)
    keys = list(client.scan_iter(match=f"{name}:*"))
    if keys:
        client.delete(*keys)
    client.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0, help="soak duration (default 60)")
    parser.add_argument("--sample", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--interval", type=float, default=5.0, help="collector interval, seconds")
    args = parser.parse_args()
    return 0 if asyncio.run(soak(args)) else 1


if __name__ == "__main__":
    sys.exit(main())
