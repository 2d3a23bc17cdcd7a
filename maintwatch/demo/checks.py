"""Find the external tools the demo uses, check ports, and validate the generated configs."""

from __future__ import annotations

import errno
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from maintwatch.demo.settings import PORT_VARS, DemoSettings, Layout

INSTALL_HINT = "apt-get install prometheus prometheus-alertmanager"


@dataclass(frozen=True)
class Tools:
    """Paths of the programs the demo runs or validates with (None when not installed)."""

    supervisord: str | None
    prometheus: str | None
    alertmanager: str | None
    promtool: str | None
    amtool: str | None

    @property
    def stack(self) -> bool:
        """Return whether Prometheus and Alertmanager can both run."""
        return self.prometheus is not None and self.alertmanager is not None


@dataclass(frozen=True)
class Check:
    """The outcome of one validation command."""

    name: str
    ok: bool
    output: str


def find_tools() -> Tools:
    """Prefer the venv's supervisord (a dependency), then PATH; Debian names for the rest."""
    venv = Path(sys.executable).parent / "supervisord"
    return Tools(
        supervisord=str(venv) if venv.is_file() else shutil.which("supervisord"),
        prometheus=shutil.which("prometheus"),
        alertmanager=shutil.which("prometheus-alertmanager") or shutil.which("alertmanager"),
        promtool=shutil.which("promtool"),
        amtool=shutil.which("amtool"),
    )


def debian_build(binary: str | None) -> bool:
    """Return whether `binary` is Debian's build of Prometheus or Alertmanager.

    Debian builds them without the React UI: Prometheus serves its classic pages under
    `/classic/` (`/alerts` is 404) and Alertmanager has no web UI at all.
    """
    if binary is None:
        return False
    try:
        done = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "debian" in (done.stdout + done.stderr).lower()


def port_taken(host: str, port: int) -> str | None:
    """Return why `host:port` cannot be listened on, or None when it is free."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Servers set SO_REUSEADDR too, so a port in TIME_WAIT counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return "in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
    return None


def supervisord_running(layout: Layout) -> bool:
    """Return whether a supervisord answers on the demo directory's socket."""
    if not layout.socket.exists():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.connect(str(layout.socket))
        except OSError:
            return False
    return True


def _other(port: int) -> int:
    return port + 10000 if port < 55535 else port - 10000


def running(layout: Layout) -> str | None:
    """Return why nothing may rebuild `layout` now (a demo runs from it), or None."""
    if not supervisord_running(layout):
        return None
    return (
        f"a demo is already running from {layout.root}: stop it with Ctrl-C in its terminal, "
        f"or: .venv/bin/supervisorctl -c {layout.supervisord_conf} shutdown"
    )


def busy(settings: DemoSettings, services: list[str]) -> list[str]:
    """Return one line per reason the demo cannot start (port taken, demo already running)."""
    layout = settings.layout
    reason = running(layout)
    if reason is not None:
        return [reason]
    out = []
    for service in services:
        port, variable = settings.ports[service], PORT_VARS[service][0]
        reason = port_taken(settings.host, port)
        if reason is not None:
            out.append(
                f"port {port} for the {service} ({variable}) is {reason} on {settings.host}: "
                f"stop what uses it, or choose another port, e.g. {variable}={_other(port)}"
            )
    return out


def _run(name: str, command: list[str]) -> Check:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Check(name, False, f"{' '.join(command)}: {exc}")
    output = (done.stdout + done.stderr).strip()
    return Check(name, done.returncode == 0, output)


def validate(settings: DemoSettings, tools: Tools, stack: bool) -> list[Check]:
    """Run every config checker that is installed over the generated configs."""
    etc, bindir = settings.layout.etc, Path(sys.executable).parent
    checks = [
        _run(
            "exporter",
            [
                str(bindir / "maintwatch-exporter"),
                "--check-config",
                f"--config.file={etc / 'exporter.yml'}",
            ],
        ),
        _run(
            "receiver",
            [
                str(bindir / "maintwatch-receiver"),
                "--check-config",
                f"--config.file={etc / 'receiver.yml'}",
            ],
        ),
    ]
    if stack and tools.promtool is not None:
        checks.append(
            _run("prometheus", [tools.promtool, "check", "config", str(etc / "prometheus.yml")])
        )
    if stack and tools.amtool is not None:
        checks.append(
            _run("alertmanager", [tools.amtool, "check-config", str(etc / "alertmanager.yml")])
        )
    return checks
