"""Shared benchmark helpers: statistics, /proc CPU and RSS, machine notes, processes, scraping.

Imported by the scripts in this directory (`import common`); every helper is loopback-only.
"""

from __future__ import annotations

import contextlib
import gzip
import http.client
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

CLK_TCK = os.sysconf("SC_CLK_TCK")
ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
# What Prometheus 2.x sends, so every exporter picks the format and compression it would in use.
PROMETHEUS_HEADERS = {
    "Accept": "application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
    "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
    "Accept-Encoding": "gzip",
    "User-Agent": "Prometheus/2.42.0",
    "X-Prometheus-Scrape-Timeout-Seconds": "10",
}


def percentile(values: Sequence[float], q: float) -> float:
    """Return the nearest-rank q-th percentile (0 < q <= 100) of `values`."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil without floats drifting
    return ordered[int(rank) - 1]


def median(values: Sequence[float]) -> float:
    """Return the median of `values`."""
    return float(statistics.median(values))


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _cpu_clock(pid: int) -> int:
    """Return the clock id of a process' CPU clock (Linux MAKE_PROCESS_CPUCLOCK, CPUCLOCK_SCHED)."""
    return ((~pid) << 3) | 2


def proc_cpu_seconds(pid: int) -> float:
    """Return the CPU seconds a whole process (all threads, exited ones too) has used.

    Read from the process' CPU clock (nanoseconds) rather than /proc/<pid>/stat, whose 10 ms
    ticks are too coarse for a Redis server's cost over a 25 s window.
    """
    try:
        return time.clock_gettime(_cpu_clock(pid))
    except OSError:
        # No such clock (the process is gone, or another kernel): fall back to /proc ticks.
        with open(f"/proc/{pid}/stat") as fh:
            # Fields after the parenthesised command name; utime and stime are fields 14, 15.
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mb(pid: int) -> dict[str, float]:
    """Return the resident set size now (`rss`) and at its peak (`hwm`) in MB."""
    out: dict[str, float] = {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out["rss" if key == "VmRSS" else "hwm"] = int(value.split()[0]) / 1024
    return out


def machine() -> dict[str, Any]:
    """Describe this machine: cores, memory, load, CPU model, kernel, Python."""
    model = "unknown"
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as fh:
        mem_kb = int(fh.readline().split()[1])
    return {
        "nproc": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "cpu_model": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def run_checked(argv: Sequence[str], timeout: float = 120) -> str:
    """Run a command to completion; raise with its output when it fails."""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} exited with {done.returncode}:\n{done.stdout}{done.stderr}")
    return done.stdout


def tool(name: str) -> str | None:
    """Return the path of an executable on PATH, or None."""
    return shutil.which(name)


class Service:
    """A child process in its own session, with its output in a log file; always stopped."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_dir: Path,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_dir / f"{name}.log"
        self._env = {**os.environ, **(env or {})}
        self._log: IO[bytes] | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """Return the process id (the service must be running)."""
        assert self.proc is not None, f"{self.name} was not started"
        return self.proc.pid

    def start(self) -> Service:
        """Start the process."""
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            self.argv, env=self._env, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        return self

    def tail(self, lines: int = 15) -> str:
        """Return the last lines of the process' output (for error messages)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def check_alive(self) -> None:
        """Raise with the output tail when the process has exited."""
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}")

    def stop(self) -> None:
        """Send SIGTERM to the process group, wait, then SIGKILL if it lingers."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
                os.killpg(self.proc.pid, signal.SIGCONT)  # a paused process must see SIGTERM
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=15)
        if self._log is not None:
            self._log.close()
            self._log = None


@contextlib.contextmanager
def services() -> Iterator[list[Service]]:
    """Yield a list to append started services to; stop them all (reverse order) on exit."""
    started: list[Service] = []
    try:
        yield started
    finally:
        for service in reversed(started):
            service.stop()


class Scraper:
    """Scrape one /metrics URL over a kept-alive connection, like Prometheus does."""

    def __init__(self, port: int, path: str = "/metrics") -> None:
        self.port = port
        self.path = path
        self._conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def get(self, path: str | None = None) -> tuple[int, bytes]:
        """Return (status, body) of one request, the body decompressed."""
        self._conn.request("GET", path or self.path, headers=PROMETHEUS_HEADERS)
        response = self._conn.getresponse()
        body = response.read()
        if response.getheader("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        return response.status, body

    def timed(self) -> float:
        """Return the seconds one scrape took, request sent to body read (not decompressed)."""
        started = time.perf_counter()
        self._conn.request("GET", self.path, headers=PROMETHEUS_HEADERS)
        response = self._conn.getresponse()
        response.read()
        elapsed = time.perf_counter() - started
        if response.status != 200:
            raise RuntimeError(f"scrape of :{self.port}{self.path} answered {response.status}")
        return elapsed

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()


def fetch(port: int, path: str = "/metrics") -> bytes:
    """Return one scrape's (decompressed) body over a connection of its own."""
    scraper = Scraper(port, path)
    try:
        status, body = scraper.get()
    finally:
        scraper.close()
    if status != 200:
        raise RuntimeError(f":{port}{path} answered {status}")
    return body


def series_count(body: bytes) -> int:
    """Return the number of samples in an exposition (text or OpenMetrics)."""
    return sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))


def wait_ready(service: Service, port: int, path: str, timeout: float = 60.0) -> None:
    """Poll `path` until it answers 200; raise naming the service when it dies or times out."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        service.check_alive()
        scraper = Scraper(port, path)
        try:
            status, _ = scraper.get()
            if status == 200:
                return
            last = f"HTTP {status}"
        except OSError as exc:
            last = str(exc)
        finally:
            scraper.close()
        time.sleep(0.1)
    raise RuntimeError(f"{service.name} not ready on :{port}{path} ({last}):\n{service.tail()}")


def require_up(service: Service, port: int, metric: bytes) -> None:
    """Raise when an exporter's own `<x>_up` sample is not 1 (it cannot reach its server)."""
    body = fetch(port)
    values = [
        line.rsplit(b" ", 1)[1] for line in body.splitlines() if line.startswith(metric + b" ")
    ]
    if values != [b"1"]:
        raise RuntimeError(f"{service.name}: {metric.decode()} is {values}:\n{service.tail()}")


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write `data` as indented JSON (creating the directory)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def be_nice() -> None:
    """Lower this process' priority: the machine is shared with other people's test runs."""
    os.nice(5)


def start_maintwatch(
    config: Path,
    log_dir: Path,
    started: list[Service],
    name: str = "maintwatch-exporter",
    may_fail: tuple[str, ...] = (),
) -> tuple[Service, int]:
    """Start `maintwatch-exporter` on a free port; return once every collector refreshed once."""
    port = free_port()
    argv = [str(VENV_BIN / "maintwatch-exporter"), f"--config.file={config}",
            f"--web.listen-address=127.0.0.1:{port}", "--log.level=warning"]  # fmt: skip
    service = Service(name, argv, log_dir).start()
    started.append(service)
    wait_ready(service, port, "/-/ready")
    down = [
        line.decode()
        for line in fetch(port).splitlines()
        if line.startswith(b"maintwatch_collector_up{")
        and line.endswith(b" 0.0")
        and not any(f'name="{name}"'.encode() in line for name in may_fail)
    ]
    if down:
        raise RuntimeError(f"maintwatch collectors down: {down}\n{service.tail()}")
    return service, port


def start_postgres_exporter(dsn: str, log_dir: Path, started: list[Service]) -> tuple[Service, int]:
    """Start Debian's prometheus-postgres-exporter against `dsn` on a free port."""
    port = free_port()
    argv = ["prometheus-postgres-exporter", f"--web.listen-address=127.0.0.1:{port}"]
    service = Service("postgres_exporter", argv, log_dir, {"DATA_SOURCE_NAME": dsn}).start()
    started.append(service)
    wait_ready(service, port, "/metrics")
    require_up(service, port, b"pg_up")
    return service, port


def start_mysqld_exporter(
    mysql_port: int, log_dir: Path, started: list[Service]
) -> tuple[Service, int]:
    """Start Debian's prometheus-mysqld-exporter as root@127.0.0.1:`mysql_port`."""
    port = free_port()
    # 0.14 refuses a .my.cnf without a password, and root has none here: DATA_SOURCE_NAME
    # (still read by 0.14) takes a password-less DSN.
    env = {"DATA_SOURCE_NAME": f"root@tcp(127.0.0.1:{mysql_port})/"}
    argv = ["prometheus-mysqld-exporter", f"--web.listen-address=127.0.0.1:{port}"]
    service = Service("mysqld_exporter", argv, log_dir, env).start()
    started.append(service)
    wait_ready(service, port, "/metrics")
    require_up(service, port, b"mysql_up")
    return service, port


def start_redis_exporter(
    redis_port: int, log_dir: Path, started: list[Service]
) -> tuple[Service, int]:
    """Start Debian's prometheus-redis-exporter against redis://127.0.0.1:`redis_port`."""
    port = free_port()
    argv = ["prometheus-redis-exporter", f"--redis.addr=redis://127.0.0.1:{redis_port}",
            f"--web.listen-address=127.0.0.1:{port}"]  # fmt: skip
    service = Service("redis_exporter", argv, log_dir).start()
    started.append(service)
    wait_ready(service, port, "/metrics")
    require_up(service, port, b"redis_up")
    return service, port
