"""A real supervisord per test: unix socket, an HTTP server with basic auth, seed-style programs."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
import xmlrpc.client
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from supervisor.xmlrpc import SupervisorTransport

from tests.conftest import free_port, require_tool

SLEEPER = f'{sys.executable} -S -c "import time; time.sleep(3600)"'

# Programs written like the seeds' /etc/supervisor/conf.d/tongacp-worker.conf.
PROGRAMS = f"""
[program:tongacp-worker]
process_name=%(program_name)s_%(process_num)02d
command={SLEEPER}
autostart=true
autorestart=true
startsecs=0
stopasgroup=true
killasgroup=true
numprocs=8
redirect_stderr=true
stdout_logfile=%(here)s/worker.log
stopwaitsecs=10

[program:crasher]
command={sys.executable} -S -c "import sys; sys.exit(3)"
autostart=true
autorestart=true
startsecs=1
startretries=1
redirect_stderr=true
stdout_logfile=%(here)s/crasher.log

[program:oneshot]
command={sys.executable} -S -c "import sys; sys.exit(2)"
autostart=true
autorestart=false
startsecs=0
exitcodes=0
redirect_stderr=true
stdout_logfile=%(here)s/oneshot.log

[program:manual]
command={SLEEPER}
autostart=true
startsecs=0
redirect_stderr=true
stdout_logfile=%(here)s/manual.log

[program:reports]
command={SLEEPER}
autostart=false
redirect_stderr=true
stdout_logfile=%(here)s/reports.log
"""


@dataclass
class Supervisord:
    """A running supervisord and how to reach it."""

    directory: str
    config: str
    socket: str
    port: int
    username: str
    password: str
    password_file: str
    process: subprocess.Popen[bytes]

    @contextlib.contextmanager
    def rpc(self) -> Iterator[Any]:
        """Yield an XML-RPC proxy over the unix socket (supervisor's own transport); close it."""
        transport = SupervisorTransport(None, None, f"unix://{self.socket}")
        try:
            yield xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)
        finally:
            transport.close()

    def ctl(self, *args: str) -> str:
        """Run supervisorctl against this supervisord and return its output."""
        result = subprocess.run(
            [require_tool("supervisorctl"), "-c", self.config, *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
        return result.stdout + result.stderr

    def states(self) -> dict[str, str]:
        """Return {group:name → statename}."""
        with self.rpc() as rpc:
            infos = rpc.supervisor.getAllProcessInfo()
        return {f"{i['group']}:{i['name']}": i["statename"] for i in infos}

    def wait_states(self, wanted: dict[str, str], deadline_s: float = 30.0) -> None:
        """Poll until every named process is in the wanted state."""
        deadline = time.monotonic() + deadline_s
        while True:
            states = self.states()
            if all(states.get(k) == v for k, v in wanted.items()):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"supervisord states {states} never reached {wanted}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Shut supervisord (and its programs) down and reap it."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _config(directory: str, port: int, username: str, password: str) -> str:
    return f"""
[unix_http_server]
file=%(here)s/supervisor.sock
chmod=0700

[inet_http_server]
port=127.0.0.1:{port}
username={username}
password={password}

[supervisord]
logfile=%(here)s/supervisord.log
pidfile=%(here)s/supervisord.pid
childlogdir=%(here)s
nodaemon=true
loglevel=warn

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://%(here)s/supervisor.sock
{PROGRAMS}"""


@pytest.fixture
def supervisord() -> Iterator[Supervisord]:
    """Start supervisord in a short temp dir; wait for its programs; shut it down after."""
    binary = require_tool("supervisord")
    # Unix socket paths are limited to ~108 bytes: pytest's tmp_path can be longer.
    directory = tempfile.mkdtemp(prefix="mws", dir="/tmp")
    port, password = free_port(), uuid.uuid4().hex
    config = f"{directory}/supervisord.conf"
    Path(config).write_text(_config(directory, port, "mw", password))
    Path(f"{directory}/password").write_text(password + "\n")
    process = subprocess.Popen(
        [binary, "-c", config], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    server = Supervisord(
        directory, config, f"{directory}/supervisor.sock", port, "mw", password,
        f"{directory}/password", process,
    )  # fmt: skip
    try:
        _wait_up(server)
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def _wait_up(server: Supervisord, deadline_s: float = 30.0) -> None:
    deadline = time.monotonic() + deadline_s
    while True:
        if server.process.poll() is not None:
            log = Path(f"{server.directory}/supervisord.log")
            raise AssertionError(f"supervisord exited: {log.read_text() if log.exists() else ''}")
        try:
            with server.rpc() as rpc:
                if rpc.supervisor.getState()["statename"] == "RUNNING":
                    return
        except OSError:
            pass  # the socket is not there yet
        if time.monotonic() > deadline:
            raise AssertionError("supervisord did not come up")
        time.sleep(0.05)
