"""The demo launcher, run as a subprocess the way `bash scripts/demo.sh` runs it."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import redis
import yaml

from maintwatch.demo import queues
from tests.conftest import free_ports, require_tool

T = TypeVar("T")
REDIS_URL = "redis://127.0.0.1:6379/0"
REPO = Path(__file__).resolve().parents[1]


def wait_for(probe: Callable[[], T | None], what: str, timeout: float) -> T:
    """Poll `probe` until it returns something truthy; fail naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.5)


def http_get(url: str, token: str | None = None) -> str | None:
    """Return the body of a 200 answer, None when the server is not answering (yet)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - http://127.0.0.1 only
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - same
            body: bytes = response.read()
            return body.decode()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def sample(metrics: str, name: str, **labels: str) -> float | None:
    """Return the value of the first sample of `name` carrying `labels`, if any."""
    for line in metrics.splitlines():
        if not line.startswith(name + "{"):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def stack_installed() -> bool:
    """Return whether Prometheus and Alertmanager are installed (CI requires them)."""
    if os.environ.get("CI"):
        require_tool("prometheus")
        require_tool("prometheus-alertmanager")
    return all(shutil.which(t) for t in ("prometheus", "prometheus-alertmanager", "promtool"))


def redis_up() -> bool:
    """Return whether the machine's Redis answers."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


@pytest.fixture
def demo_env(tmp_path: Path, unique: str) -> Iterator[dict[str, str]]:
    """Return the environment of one demo run: own directory, free ports, own Redis prefix."""
    prefix = f"{unique}_database_"
    exporter, receiver, prometheus, alertmanager = free_ports(4)
    env = {
        **os.environ,
        "MW_DEMO_DIR": str(tmp_path / "demo"),
        "MW_DEMO_EXPORTER_PORT": str(exporter),
        "MW_DEMO_RECEIVER_PORT": str(receiver),
        "MW_DEMO_PROMETHEUS_PORT": str(prometheus),
        "MW_DEMO_ALERTMANAGER_PORT": str(alertmanager),
        "MW_DEMO_REDIS_URL": REDIS_URL,
        "MW_DEMO_REDIS_PREFIX": prefix,
    }
    yield env
    if redis_up():
        queues.remove(REDIS_URL, prefix)


def launcher(*args: str) -> list[str]:
    """Return the launcher's command line."""
    return [sys.executable, "-m", "maintwatch.demo", *args]


def children(pid: int) -> list[int]:
    """Return the pids whose parent is `pid` (read from /proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # exited while we looked
        # The command name is in parentheses and may hold spaces: split after the last ')'.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            out.append(int(entry.name))
    return out


def alive(pid: int) -> bool:
    """Return whether `pid` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_check_builds_world_and_valid_configs(demo_env: dict[str, str]) -> None:
    done = subprocess.run(
        launcher("--check"), env=demo_env, capture_output=True, text=True, timeout=120, cwd=REPO
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "demo configs valid" in done.stdout
    root = Path(demo_env["MW_DEMO_DIR"])
    for name in ("exporter.yml", "receiver.yml", "supervisord.conf"):
        assert (root / "etc" / name).is_file()
    assert "ok   exporter" in done.stdout
    assert "ok   receiver" in done.stdout
    receiver = yaml.safe_load((root / "etc" / "receiver.yml").read_text())
    if stack_installed():
        assert "ok   prometheus: SUCCESS" in done.stdout
        assert "ok   alertmanager" in done.stdout
        # With the demo's Alertmanager running, an ack silences the incident's alerts there.
        port = demo_env["MW_DEMO_ALERTMANAGER_PORT"]
        assert receiver["alertmanager"]["url"] == f"http://127.0.0.1:{port}"
    else:
        assert "alertmanager" not in receiver
    assert not list((root / "run").iterdir()), "--check must not start anything"


def test_rerun_rebuilds_the_world(demo_env: dict[str, str]) -> None:
    root = Path(demo_env["MW_DEMO_DIR"])
    done = subprocess.run(launcher("--check"), env=demo_env, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    (root / "world" / "stray").write_text("left by the previous run")
    token = (root / "etc" / "secrets" / "api_token").read_text()
    done = subprocess.run(launcher("--check"), env=demo_env, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert not (root / "world" / "stray").exists()
    assert (root / "etc" / "secrets" / "api_token").read_text() != token, "fresh secrets"


def test_refuses_a_directory_it_did_not_make(demo_env: dict[str, str]) -> None:
    root = Path(demo_env["MW_DEMO_DIR"])
    root.mkdir()
    (root / "precious.txt").write_text("keep me")
    done = subprocess.run(
        launcher("--check"), env=demo_env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert "was not made by the demo" in done.stderr
    assert (root / "precious.txt").read_text() == "keep me"


def test_check_refuses_while_a_demo_runs(demo_env: dict[str, str]) -> None:
    root = Path(demo_env["MW_DEMO_DIR"])
    done = subprocess.run(launcher("--check"), env=demo_env, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    token = (root / "etc" / "secrets" / "api_token").read_text()
    # A listening socket where the demo's supervisord keeps its own: a demo is running.
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as supervisord:
        supervisord.bind(str(root / "run" / "supervisor.sock"))
        supervisord.listen()
        done = subprocess.run(
            launcher("--check"), env=demo_env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 1
        assert "a demo is already running" in done.stderr
        assert "MW_DEMO_DIR=" in done.stderr, "says how to check elsewhere"
        assert (root / "run" / "supervisor.sock").exists()
        assert (root / "etc" / "secrets" / "api_token").read_text() == token, "nothing rebuilt"


def test_refuses_a_port_in_use(demo_env: dict[str, str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        demo_env["MW_DEMO_RECEIVER_PORT"] = str(taken.getsockname()[1])
        done = subprocess.run(launcher(), env=demo_env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "MW_DEMO_RECEIVER_PORT" in done.stderr
    assert "in use" in done.stderr
    assert not Path(demo_env["MW_DEMO_DIR"]).exists(), "nothing is built when a port is taken"


def test_rejects_a_bad_port_variable(demo_env: dict[str, str]) -> None:
    demo_env["MW_DEMO_EXPORTER_PORT"] = "nine"
    done = subprocess.run(launcher(), env=demo_env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "MW_DEMO_EXPORTER_PORT='nine'" in done.stderr


def _exporter_shows_the_world(url: str, with_redis: bool) -> dict[str, float] | None:
    metrics = http_get(f"{url}/metrics")
    if metrics is None:
        return None
    found = {
        "stale": sample(metrics, "maintwatch_backup_last_timestamp_seconds", backup="shop_media"),
        "corrupt": sample(metrics, "maintwatch_backup_last_verify_success", backup="shop_reports"),
        "healthy": sample(metrics, "maintwatch_backup_last_verify_success", backup="shop_db"),
        "drill_ok": sample(metrics, "maintwatch_backup_drill_success", backup="shop_files"),
        "drill_bad": sample(metrics, "maintwatch_backup_drill_success", backup="shop_media"),
        "cert": sample(metrics, "maintwatch_tls_cert_not_after_timestamp_seconds"),
        "down": sample(metrics, "maintwatch_app_maintenance_mode", app="shop"),
    }
    if with_redis:
        found["backlog"] = sample(
            metrics, "maintwatch_queue_jobs", queue="default", state="pending"
        )
    present = {k: v for k, v in found.items() if v is not None}
    return present if len(present) == len(found) else None


def _incidents(url: str, token: str) -> list[dict[str, Any]] | None:
    body = http_get(f"{url}/api/v1/incidents", token)
    found: list[dict[str, Any]] = json.loads(body)["incidents"] if body else []
    return found or None


def _incident_named(url: str, token: str, alertname: str) -> bool | None:
    found = _incidents(url, token) or []
    return any(alertname in json.dumps(i) for i in found) or None


def _stack_links_work(banner: str) -> None:
    """Open every Prometheus URL and run every amtool command the banner prints."""
    urls = re.findall(r"^  prometheus\s+(http\S+)", banner, re.MULTILINE)
    assert urls, banner
    for url in urls:
        assert http_get(url) is not None, f"banner link {url} does not answer 200"
    commands = re.findall(r"^\s+(?:alertmanager\s+)?(amtool \S+ \w+ query)", banner, re.MULTILINE)
    assert commands, banner
    for command in commands:
        done = subprocess.run(
            [require_tool("amtool"), *shlex.split(command)[1:]],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 0, f"{command}: {done.stdout}{done.stderr}"


def _stop(process: subprocess.Popen[bytes]) -> list[int]:
    """SIGTERM supervisord, wait for it, return the pids of the programs it ran."""
    programs = children(process.pid)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)
    return programs


@pytest.mark.e2e
@pytest.mark.slow
def test_demo_runs_end_to_end(demo_env: dict[str, str], tmp_path: Path) -> None:
    stack = stack_installed()
    with_redis = redis_up()
    root = Path(demo_env["MW_DEMO_DIR"])
    exporter = f"http://127.0.0.1:{demo_env['MW_DEMO_EXPORTER_PORT']}"
    receiver = f"http://127.0.0.1:{demo_env['MW_DEMO_RECEIVER_PORT']}"
    out_path = tmp_path / "demo.out"
    with out_path.open("ab") as out:
        process = subprocess.Popen(launcher(), env=demo_env, stdout=out, stderr=subprocess.STDOUT)
    programs: list[int] = []
    try:
        seen = wait_for(lambda: _exporter_shows_the_world(exporter, with_redis), "metrics", 60)
        now = time.time()
        assert now - seen["stale"] > 26 * 3600, "the stale set's newest backup is days old"
        assert seen["corrupt"] == 0
        assert seen["healthy"] == 1
        assert (seen["drill_ok"], seen["drill_bad"]) == (1, 0)
        assert 4 * 86400 < seen["cert"] - now < 6 * 86400
        assert seen["down"] == 1
        if with_redis:
            assert seen["backlog"] == queues.QUEUES["default"]
        if stack:
            token = (root / "etc" / "secrets" / "api_token").read_text().strip()
            found = wait_for(lambda: _incidents(receiver, token), "an incident", 120)
            names = {i["group_labels"].get("alertname") for i in found}
            assert names, found
            wait_for(lambda: _incident_named(receiver, token, "BackupDrillFailed"), "drill", 120)
            wait_for(lambda: b"[FIRING]" in out_path.read_bytes(), "console notification", 30)
            assert http_get(f"{receiver}/") is not None, "the incidents page (or its login) answers"
            assert (root / "logs" / "notifications.jsonl").stat().st_size > 0
            _stack_links_work(out_path.read_text(errors="replace"))
            prometheus = f"http://127.0.0.1:{demo_env['MW_DEMO_PROMETHEUS_PORT']}"
            metrics = http_get(f"{prometheus}/metrics") or ""
            # Alertmanager was ready before Prometheus sent anything: not one alert dropped.
            assert "prometheus_notifications_dropped_total 0" in metrics
            # --check would rebuild var/demo/ under the running programs: it refuses.
            check = subprocess.run(
                launcher("--check"), env=demo_env, capture_output=True, text=True, timeout=60
            )
            assert check.returncode == 1
            assert "a demo is already running" in check.stderr
            assert (root / "run" / "supervisor.sock").exists()
    finally:
        programs = _stop(process) if process.poll() is None else []
    assert process.returncode == 0, out_path.read_text(errors="replace")
    assert len(programs) >= 3, "exporter, receiver and traffic ran under supervisord"
    assert not [pid for pid in programs if alive(pid)], "no orphan processes"
