"""Demo settings from `MW_DEMO_*` environment variables, and where everything goes on disk.

This is the only demo module that reads the environment.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
"""The checkout the demo runs from (the demo needs `rules/` beside the installed packages)."""

PORT_VARS = {
    "exporter": ("MW_DEMO_EXPORTER_PORT", 9839),
    "receiver": ("MW_DEMO_RECEIVER_PORT", 9840),
    # Debian's prometheus and prometheus-alertmanager packages start services on 9090/9093.
    "prometheus": ("MW_DEMO_PROMETHEUS_PORT", 19090),
    "alertmanager": ("MW_DEMO_ALERTMANAGER_PORT", 19093),
}
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_REDIS_PREFIX = "maintwatch_demo_database_"
_PREFIX = re.compile(r"^[A-Za-z0-9_:.-]{1,64}$")


class SettingsError(ValueError):
    """An `MW_DEMO_*` variable holds something unusable; the message names it."""


@dataclass(frozen=True)
class Layout:
    """Every path the demo writes, below one directory (default `var/demo/`)."""

    root: Path

    @property
    def world(self) -> Path:
        """Return the directory of the demo's backups, certificates and app."""
        return self.root / "world"

    @property
    def etc(self) -> Path:
        """Return the directory of generated configs."""
        return self.root / "etc"

    @property
    def secrets(self) -> Path:
        """Return the directory of generated secret files."""
        return self.etc / "secrets"

    @property
    def rules(self) -> Path:
        """Return the directory of rule files rendered with the demo thresholds."""
        return self.root / "rules"

    @property
    def data(self) -> Path:
        """Return the directory of state: receiver DB, Prometheus TSDB, Alertmanager."""
        return self.root / "data"

    @property
    def logs(self) -> Path:
        """Return the directory of log files."""
        return self.root / "logs"

    @property
    def run(self) -> Path:
        """Return the directory of the supervisord socket and pid file."""
        return self.root / "run"

    @property
    def socket(self) -> Path:
        """Return supervisord's unix socket."""
        return self.run / "supervisor.sock"

    @property
    def supervisord_conf(self) -> Path:
        """Return the generated supervisord config."""
        return self.etc / "supervisord.conf"


@dataclass(frozen=True)
class DemoSettings:
    """Ports, directory and Redis target of one demo run."""

    layout: Layout
    host: str
    ports: Mapping[str, int]
    redis_url: str | None
    redis_prefix: str

    def url(self, service: str) -> str:
        """Return the base URL of a service (exporter, receiver, prometheus, alertmanager)."""
        return f"http://{self.host}:{self.ports[service]}"


def _port(environ: Mapping[str, str], name: str, default: int) -> int:
    text = environ.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise SettingsError(f"{name}={text!r}: expected a TCP port (1-65535)")
    return int(text)


def _redis(environ: Mapping[str, str]) -> tuple[str | None, str]:
    url = environ.get("MW_DEMO_REDIS_URL", DEFAULT_REDIS_URL).strip()
    prefix = environ.get("MW_DEMO_REDIS_PREFIX", DEFAULT_REDIS_PREFIX).strip()
    if not _PREFIX.match(prefix):
        raise SettingsError(f"MW_DEMO_REDIS_PREFIX={prefix!r}: use 1-64 of A-Z a-z 0-9 _ : . -")
    return (None if url.lower() in {"", "off", "none"} else url), prefix


def from_env(environ: Mapping[str, str] | None = None) -> DemoSettings:
    """Read the `MW_DEMO_*` variables; raise SettingsError naming a bad one."""
    env = os.environ if environ is None else environ
    ports = {svc: _port(env, var, default) for svc, (var, default) in PORT_VARS.items()}
    clashes = {p for p in ports.values() if list(ports.values()).count(p) > 1}
    if clashes:
        raise SettingsError(f"MW_DEMO_*_PORT: two services on port {min(clashes)}")
    directory = Path(env.get("MW_DEMO_DIR") or REPO / "var" / "demo").resolve()
    redis_url, prefix = _redis(env)
    host = env.get("MW_DEMO_HOST", "127.0.0.1").strip() or "127.0.0.1"
    return DemoSettings(Layout(directory), host, ports, redis_url, prefix)
