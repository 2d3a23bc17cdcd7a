"""docker/: compose structure, ports and paths, promtool/amtool on configs, supervisord for real.

No Docker engine runs here, so each container's view is rebuilt in a temp dir from the compose
file's own mounts (bind sources linked at their container paths) and checked with the real tools.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import free_port, require_tool

REPO = Path(__file__).resolve().parents[1]
DOCKER = REPO / "docker"
EXPORTER_PORT, RECEIVER_PORT = 9839, 9840


def compose() -> dict[str, Any]:
    """Return the parsed compose file (YAML merge keys resolved)."""
    data: dict[str, Any] = yaml.safe_load((DOCKER / "compose.yml").read_text())
    return data


def binds(service: dict[str, Any]) -> list[tuple[Path, str]]:
    """Return (host path, container path) of a service's bind mounts."""
    out = []
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith((".", "/")):
            out.append(((DOCKER / source).resolve(), target))
    return out


def mirror(service: dict[str, Any], root: Path) -> None:
    """Recreate the service's bind mounts and secrets under `root` as links to the sources."""
    secrets = compose()["secrets"]
    mounts = binds(service) + [
        ((DOCKER / secrets[name]["file"]).resolve(), f"/run/secrets/{name}")
        for name in service.get("secrets", [])
    ]
    for source, target in mounts:
        link = root / target.lstrip("/")
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(source)


def test_compose_structure() -> None:
    data = compose()
    services, secrets, volumes = data["services"], data["secrets"], data["volumes"]
    assert {
        "exporter",
        "receiver",
        "prometheus",
        "alertmanager",
        "grafana",
        "mailpit",
        "postgres",
        "redis",
    } <= set(services)
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        if "build" in service:
            context = (DOCKER / service["build"]["context"]).resolve()
            assert (context / service["build"]["dockerfile"]).is_file(), name
        for port in service.get("ports", []):
            assert re.fullmatch(r"\d+:\d+", port), f"{name}: port {port!r} is not host:container"
        for source, target in binds(service):
            assert source.exists(), f"{name}: mounts missing {source} at {target}"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith((".", "/")):
                assert source in volumes, f"{name}: named volume {source} is not declared"
        for secret in service.get("secrets", []):
            assert secret in secrets, f"{name}: secret {secret} is not declared"
        for other in service.get("depends_on", []):
            assert other in services, f"{name}: depends on unknown {other}"
    for name, secret in secrets.items():
        assert (DOCKER / secret["file"]).is_file(), f"secret {name}: {secret['file']} missing"
    for name, service in services.items():
        for key, value in service.get("environment", {}).items():
            if re.search(r"PASSWORD|TOKEN|SECRET", key):
                assert key.endswith("_FILE"), f"{name}: {key} inline; use a *_FILE secret"
                assert str(value).startswith("/run/secrets/"), f"{name}: {key}={value}"


def test_ports_agree_everywhere() -> None:
    services = compose()["services"]
    assert f"{EXPORTER_PORT}:{EXPORTER_PORT}" in services["exporter"]["ports"]
    assert f"{RECEIVER_PORT}:{RECEIVER_PORT}" in services["receiver"]["ports"]
    assert f"--web.listen-address=:{EXPORTER_PORT}" in services["exporter"]["command"]
    assert f"--web.listen-address=:{RECEIVER_PORT}" in services["receiver"]["command"]
    prometheus = (DOCKER / "prometheus" / "prometheus.yml").read_text()
    assert f"exporter:{EXPORTER_PORT}" in prometheus
    assert f"receiver:{RECEIVER_PORT}" in prometheus
    alertmanager = (DOCKER / "alertmanager" / "alertmanager.yml").read_text()
    assert f"http://receiver:{RECEIVER_PORT}/webhooks/alertmanager" in alertmanager
    supervisord = (DOCKER / "supervisord.conf").read_text()
    assert f"--web.listen-address=:{EXPORTER_PORT}" in supervisord
    assert f"--web.listen-address=:{RECEIVER_PORT}" in supervisord
    dockerfile = (DOCKER / "Dockerfile").read_text()
    assert f"EXPOSE {EXPORTER_PORT} {RECEIVER_PORT}" in dockerfile
    readme = (REPO / "README.md").read_text()
    assert f"**{EXPORTER_PORT}**" in readme
    assert f"**{RECEIVER_PORT}**" in readme


def test_dockerfile_shape() -> None:
    text = (DOCKER / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)", text, re.MULTILINE)
    assert len(stages) >= 2, "multi-stage"
    assert all(s.startswith("python:3.11-slim") for s in stages)
    final = text.rsplit("\nFROM ", 1)[1]
    assert re.search(r"^USER (?!root)\w+", final, re.MULTILINE), "runs as a non-root user"
    assert "/-/healthy" in final
    assert "HEALTHCHECK" in final
    assert "apt-get install" not in final, "no build tools in the final image"
    for copied in re.findall(r"^COPY (?!--from)(\S+)", text, re.MULTILINE):
        assert (REPO / copied).exists(), f"COPY {copied}: not in the repository"


def test_promtool_accepts_prometheus_config_with_its_rules(tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    mirror(compose()["services"]["prometheus"], tmp_path)
    config = tmp_path / "etc" / "prometheus" / "prometheus.yml"
    done = subprocess.run(
        [promtool, "check", "config", str(config)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    expected = len(list((REPO / "rules").glob("*.rules.yml")))
    assert expected > 0
    assert f"SUCCESS: {expected} rule files found" in done.stdout


def test_amtool_accepts_alertmanager_config() -> None:
    amtool = require_tool("amtool")
    path = DOCKER / "alertmanager" / "alertmanager.yml"
    done = subprocess.run(
        [amtool, "check-config", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    config = yaml.safe_load(path.read_text())
    hook = config["receivers"][0]["webhook_configs"][0]["http_config"]["authorization"]
    secret = hook["credentials_file"].removeprefix("/run/secrets/")
    assert secret in compose()["services"]["alertmanager"]["secrets"]
    receiver = yaml.safe_load((DOCKER / "receiver.yml").read_text())
    assert receiver["webhook"]["token_file"] == hook["credentials_file"], "one shared token"


@pytest.mark.parametrize("program", ["exporter", "receiver"])
def test_service_configs_are_valid(program: str, tmp_path: Path) -> None:
    service = compose()["services"][program]
    mirror(service, tmp_path)
    # The configs name container paths; point them at the mirror for the check.
    text = (
        (DOCKER / f"{program}.yml").read_text().replace("/run/secrets/", f"{tmp_path}/run/secrets/")
    )
    config = tmp_path / f"{program}.yml"
    config.write_text(text)
    binary = Path(sys.executable).parent / f"maintwatch-{program}"
    done = subprocess.run(
        [str(binary), "--check-config", f"--config.file={config}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


# ---- supervisord, started for real ------------------------------------------------------


def supervisord_binary() -> str:
    """Prefer the venv's supervisord (a dependency), else the Debian one."""
    venv = Path(sys.executable).parent / "supervisord"
    return str(venv) if venv.is_file() else require_tool("supervisord")


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """Yield a short temp dir: unix socket paths must stay under 108 bytes."""
    path = Path(tempfile.mkdtemp(prefix="mwsv", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def localize(root: Path, ports: tuple[int, int]) -> Path:
    """Write docker/supervisord.conf with its paths and ports moved under `root`."""
    text = (DOCKER / "supervisord.conf").read_text()
    for prefix, local in (
        ("/etc/maintwatch", "etc"),
        ("/var/log/maintwatch", "log"),
        ("/run/maintwatch", "run"),
    ):
        text = text.replace(prefix, str(root / local))
        (root / local).mkdir(parents=True, exist_ok=True)
    text = text.replace(f"=:{EXPORTER_PORT}", f"=127.0.0.1:{ports[0]}")
    text = text.replace(f"=:{RECEIVER_PORT}", f"=127.0.0.1:{ports[1]}")
    (root / "etc" / "exporter.yml").write_text(
        f"supervisor:\n  - name: local\n    url: unix://{root / 'run' / 'supervisor.sock'}\n"
        "    interval: 1s\n"
    )
    (root / "etc" / "receiver.yml").write_text(
        f"store: {{type: sqlite, path: {root / 'r.db'}}}\nwebhook: {{auth: none}}\n"
    )
    conf = root / "etc" / "supervisord.conf"
    conf.write_text(text)
    return conf


def get(url: str) -> str | None:
    """Return the body of a 200 answer, or None while the server is not up."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - 127.0.0.1 only
            body: bytes = response.read()
            return body.decode()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def poll(what: str, check: Any, logs: Path, timeout: float = 60) -> Any:
    """Call `check` until it returns something truthy; fail with the logs at the deadline."""
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            tails = "\n".join(f"--- {p.name}\n{p.read_text()[-2000:]}" for p in logs.glob("*.*"))
            pytest.fail(f"timed out waiting for {what}\n{tails}")
        time.sleep(0.3)
    return value


@pytest.mark.e2e
def test_supervisord_runs_exporter_and_receiver(short_dir: Path) -> None:
    ports = (free_port(), free_port())
    conf = localize(short_dir, ports)
    bindir = Path(sys.executable).parent
    env = {"PATH": f"{bindir}:/usr/bin:/bin", "HOME": str(short_dir)}
    log = (short_dir / "supervisord.out").open("wb")
    process = subprocess.Popen(
        [supervisord_binary(), "-c", str(conf)], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    ctl = [str(bindir / "supervisorctl"), "-c", str(conf), "status"]

    def both_running() -> bool:
        out = subprocess.run(ctl, capture_output=True, text=True, timeout=10, check=False).stdout
        return len(re.findall(r"^maintwatch-\w+\s+RUNNING", out, re.MULTILINE)) == 2

    try:
        logs = short_dir / "log"
        poll("both programs RUNNING", both_running, logs)
        exporter, receiver = (f"http://127.0.0.1:{port}" for port in ports)
        assert "Healthy" in poll("exporter", lambda: get(f"{exporter}/-/healthy"), logs)
        assert "Healthy" in poll("receiver", lambda: get(f"{receiver}/-/healthy"), logs)
        # The exporter's own Supervisor collector reads this supervisord through the socket.
        wanted = 'process="maintwatch-receiver",state="RUNNING",supervisor="local"} 1.0'
        poll("supervisor metrics", lambda: wanted in (get(f"{exporter}/metrics") or ""), logs)
        assert (short_dir / "log" / "exporter.log").is_file()
        assert (short_dir / "log" / "receiver.log").is_file()
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        log.close()
    assert process.returncode == 0, (short_dir / "supervisord.out").read_text()
    assert "exporter_stopped" in (short_dir / "log" / "exporter.log").read_text()
    assert "receiver_stopped" in (short_dir / "log" / "receiver.log").read_text()
