"""docker/: compose schema and structure, ports and paths, the image's file list, promtool and
amtool on the mounted configs, the generated secrets, supervisord for real.

No Docker engine runs here, so each container's view is rebuilt in a temp dir from the compose
file's own mounts (bind sources linked at their container paths, the secrets made by the
stack's own init-secrets command) and checked with the real tools.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
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

import jsonschema_rs
import pytest
import yaml

from maintwatch.demo.alertmanager import recommended, render
from tests.conftest import free_port, require_tool

REPO = Path(__file__).resolve().parents[1]
DOCKER = REPO / "docker"
EXPORTER_PORT, RECEIVER_PORT = 9839, 9840
SECRETS = "/run/secrets"
PUBLISHED = re.compile(r"\$\{MW_BIND_ADDRESS:-127\.0\.0\.1\}:(\d+):(\d+)")


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


def secret_names() -> list[str]:
    """Return the secrets init-secrets creates (its command: module, directory, names)."""
    command: list[str] = compose()["services"]["init-secrets"]["command"]
    assert command[:4] == ["python", "-m", "maintwatch.initsecrets", SECRETS]
    return command[4:]


def mounts_secrets(service: dict[str, Any]) -> bool:
    """Return whether the service mounts the generated secrets read-only."""
    return f"secrets:{SECRETS}:ro" in service.get("volumes", [])


def mirror(service: dict[str, Any], root: Path) -> None:
    """Recreate the service's bind mounts under `root` as links, and its secrets for real."""
    for source, target in binds(service):
        link = root / target.lstrip("/")
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(source)
    if mounts_secrets(service):
        command = compose()["services"]["init-secrets"]["command"]
        done = subprocess.run(
            [sys.executable, *command[1:3], str(root / SECRETS.lstrip("/")), *command[4:]],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stdout + done.stderr


def test_compose_file_matches_the_compose_schema() -> None:
    schema = json.loads((REPO / "tests" / "fixtures" / "compose" / "compose-spec.json").read_text())
    errors = [str(e) for e in jsonschema_rs.validator_for(schema).iter_errors(compose())]
    assert errors == []
    bad = {**compose(), "services": {"x": {"image": "a", "portz": ["1:1"]}}}
    assert list(jsonschema_rs.validator_for(schema).iter_errors(bad)), "it rejects a typo"


def test_compose_structure() -> None:
    data = compose()
    services, volumes = data["services"], data["volumes"]
    assert "secrets" not in data, "no secret file is committed: init-secrets makes them"
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
    generated = set(secret_names())
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        if "build" in service:
            context = (DOCKER / service["build"]["context"]).resolve()
            assert (context / service["build"]["dockerfile"]).is_file(), name
        for port in service.get("ports", []):
            # Alertmanager's API has no authentication: nothing listens beyond this host
            # unless MW_BIND_ADDRESS says so.
            assert PUBLISHED.fullmatch(port), f"{name}: port {port!r} not bound to 127.0.0.1"
        for source, target in binds(service):
            assert source.exists(), f"{name}: mounts missing {source} at {target}"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith((".", "/")):
                assert source in volumes, f"{name}: named volume {source} is not declared"
        for other in service.get("depends_on", []):
            assert other in services, f"{name}: depends on unknown {other}"
        if mounts_secrets(service):
            assert service["depends_on"]["init-secrets"] == {
                "condition": "service_completed_successfully"
            }, f"{name}: starts before its secrets exist"
        for key, value in service.get("environment", {}).items():
            if re.search(r"PASSWORD|TOKEN|SECRET", key):
                assert key.endswith("_FILE"), f"{name}: {key} inline; use a *_FILE secret"
                assert str(value).removeprefix(f"{SECRETS}/") in generated, f"{name}: {key}"
                assert mounts_secrets(service), f"{name}: reads {value} without the volume"
    # Every secret a mounted config names is one init-secrets makes.
    for config in ("exporter.yml", "receiver.yml", "alertmanager/alertmanager.yml"):
        for used in re.findall(rf"{SECRETS}/([\w.-]+)", (DOCKER / config).read_text()):
            assert used in generated, f"{config}: {used} is never generated"


def test_init_secrets_makes_missing_ones_and_keeps_the_rest(tmp_path: Path) -> None:
    command = compose()["services"]["init-secrets"]["command"]
    run = [sys.executable, *command[1:3], str(tmp_path), *command[4:]]
    first = subprocess.run(run, capture_output=True, text=True, timeout=60, check=True)
    assert "kept none" in first.stdout
    values = {n: (tmp_path / n).read_text() for n in secret_names()}
    assert len(set(values.values())) == len(values), "each secret its own random value"
    assert all(len(v.strip()) >= 40 for v in values.values())
    (tmp_path / "api_token").unlink()
    again = subprocess.run(run, capture_output=True, text=True, timeout=60, check=True)
    assert "created api_token;" in again.stdout
    for name, value in values.items():
        if name != "api_token":
            assert (tmp_path / name).read_text() == value, f"{name} changed on a restart"


def test_exporter_role_script_makes_a_pg_monitor_login(tmp_path: Path, unique: str) -> None:
    (tmp_path / "exporter_db_password").write_text("pw-from-the-secret\n")
    role = f"{unique}_exporter"
    env = {
        **os.environ,
        "PGHOST": "127.0.0.1",
        "POSTGRES_USER": "postgres",
        "POSTGRES_DB": "postgres",
        "MW_EXPORTER_ROLE": role,
        "MW_SECRETS_DIR": str(tmp_path),
    }
    script = DOCKER / "postgres" / "10-exporter-role.sh"
    psql = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-tAc"]
    try:
        done = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        query = f"SELECT rolsuper, rolcanlogin, pg_has_role('{role}', 'pg_monitor', 'member')"
        found = subprocess.run(
            [*psql, f"{query} FROM pg_roles WHERE rolname = '{role}'"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert found.stdout.strip() == "f|t|t", "a monitoring login, not a superuser"
    finally:
        subprocess.run([*psql, f'DROP ROLE IF EXISTS "{role}"'], capture_output=True, check=False)
    dsn = yaml.safe_load((DOCKER / "exporter.yml").read_text())["databases"][0]["dsn"]
    assert dsn.startswith("postgresql://maintwatch_exporter@"), "the exporter logs in as it"


def test_ports_agree_everywhere() -> None:
    services = compose()["services"]
    published = {
        name: [pair for port in s.get("ports", []) for pair in PUBLISHED.findall(port)]
        for name, s in services.items()
    }
    assert published["exporter"] == [(str(EXPORTER_PORT), str(EXPORTER_PORT))]
    assert published["receiver"] == [(str(RECEIVER_PORT), str(RECEIVER_PORT))]
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


def build_context() -> list[str]:
    """Return the repository files BuildKit sends, by Dockerfile.dockerignore (last rule wins)."""
    rules = []
    for line in (DOCKER / "Dockerfile.dockerignore").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keep = line.startswith("!")
            rules.append((keep, line.removeprefix("!").rstrip("/")))
    files = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()

    def sent(path: str) -> bool:
        verdict = True
        for keep, pattern in rules:
            parts = path.split("/")
            prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
            if any(fnmatch.fnmatch(p, pattern) for p in prefixes) or (
                pattern.startswith("**/") and fnmatch.fnmatch(parts[-1], pattern[3:])
            ):
                verdict = keep
        return verdict

    return [f for f in files if sent(f)]


def test_image_file_list() -> None:
    context = build_context()
    text = (DOCKER / "Dockerfile").read_text()
    for copied in re.findall(r"^COPY (?!--from)(\S+)", text, re.MULTILINE):
        assert any(f == copied or f.startswith(copied) for f in context), (
            f"COPY {copied}: excluded by docker/Dockerfile.dockerignore"
        )
    assert "docker/supervisord.conf" in context
    assert "COPY docker/supervisord.conf /etc/maintwatch/supervisord.conf" in text
    claimed = (DOCKER / "supervisord.conf").read_text()
    assert "supervisord -n -c /etc/maintwatch/supervisord.conf" in claimed
    local = ("tests/", "var/", "examples/", ".")
    assert not [f for f in context if "/secrets/" in f"/{f}" or f.startswith(local)]
    assert not [f for f in context if f.endswith((".pyc", ".db"))]


def test_dockerfile_shape() -> None:
    text = (DOCKER / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)", text, re.MULTILINE)
    assert len(stages) >= 2, "multi-stage"
    # A pinned base: the same Python and Debian release on every rebuild.
    assert all(re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", s) for s in stages), stages
    assert "tzdata" in text
    assert "COPY --from=build /usr/share/zoneinfo /usr/share/zoneinfo" in text
    final = text.rsplit("\nFROM ", 1)[1]
    assert re.search(r"^USER (?!root)\w+", final, re.MULTILINE), "runs as a non-root user"
    assert "/-/healthy" in final
    assert "HEALTHCHECK" in final
    assert "MW_HEALTH_PORTS" in final, "the health check asks every program it runs"
    assert 'VOLUME ["/var/lib/maintwatch"]' in final
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
    assert hook["credentials_file"].removeprefix(f"{SECRETS}/") in secret_names()
    assert mounts_secrets(compose()["services"]["alertmanager"])
    receiver = yaml.safe_load((DOCKER / "receiver.yml").read_text())
    assert receiver["webhook"]["token_file"] == hook["credentials_file"], "one shared token"


def test_alertmanager_config_is_generated_from_the_recommended_one() -> None:
    # examples/alertmanager.yml is the one recommended config; this file is its copy for the
    # stack, regenerated by the command in its header.
    text = (DOCKER / "alertmanager" / "alertmanager.yml").read_text()
    command = text.splitlines()[1].removeprefix("#   ")
    words = shlex.split(command)
    url, token = (words[words.index(flag) + 1] for flag in ("--url", "--token-file"))
    assert text == render(recommended(url, token), command), f"stale: run {command}"
    assert url == f"http://receiver:{RECEIVER_PORT}"
    receiver = yaml.safe_load((DOCKER / "receiver.yml").read_text())
    assert receiver["watchdog"]["notify"], "the Watchdog reaches the receiver: it must expect it"


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
    # The service's environment as compose sets it, with `${VAR:-default}` defaults.
    environment = {
        key: re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", str(value))
        for key, value in service.get("environment", {}).items()
    }
    done = subprocess.run(
        [str(binary), "--check-config", f"--config.file={config}"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **environment},
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
