"""Supervisor process states, start times, exit codes and observed restarts over XML-RPC.

The call is a small async XML-RPC POST with aiohttp (a UnixConnector for `unix://` sockets,
basic auth for `http://`), so the refresh timeout really cancels it; `xmlrpc.client` only
encodes the request and decodes the answer of a supervisord the operator configured. The
answer is read up to `max_response_bytes` and parsed in a worker thread: a huge or endless
answer fails this instance only, never stalls the event loop (and with it every scrape).
"""

from __future__ import annotations

import xmlrpc.client  # parses the answer of the configured supervisord only
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit
from xml.parsers.expat import ExpatError

import aiohttp
from prometheus_client.core import Metric
from pydantic import Field, ValidationInfo, field_validator

from exporter.collectors.base import CollectError, Collector, Context
from exporter.config import InstanceConfig
from exporter.metrics import MetricSet, counter, gauge
from exporter.workers import pool, run_in
from maintwatch.configload import SecretFromFile
from maintwatch.httpauth import basic_auth

SUPERVISOR_PROCESS_STATE = gauge(
    "maintwatch_supervisor_process_state",
    "Supervisor process state: one series per state, 1 for the current one.",
    "state",
    "group",
    "process",
)
SUPERVISOR_PROCESS_START_TIMESTAMP_SECONDS = gauge(
    "maintwatch_supervisor_process_start_timestamp_seconds",
    "Unix time the process was last started.",
    "group",
    "process",
)
SUPERVISOR_PROCESS_EXIT_CODE = gauge(
    "maintwatch_supervisor_process_exit_code",
    "Exit status of the process's last exit (0 if it never exited).",
    "group",
    "process",
)
SUPERVISOR_PROCESS_RESTARTS_TOTAL = counter(
    "maintwatch_supervisor_process_restarts_total",
    "Restarts observed between refreshes (start time or pid changed).",
    "group",
    "process",
)
SUPERVISOR_PROCESSES = gauge(
    "maintwatch_supervisor_processes",
    "Processes of the group in each Supervisor state.",
    "group",
    "state",
)

# Supervisor's process states (supervisor.states.ProcessStates), in its own order.
STATES = ("STOPPED", "STARTING", "RUNNING", "BACKOFF", "STOPPING", "EXITED", "FATAL", "UNKNOWN")


class SupervisorConfig(InstanceConfig):
    """One supervisord reached over its unix socket or its HTTP server."""

    url: str = "unix:///run/supervisor.sock"
    username: str | None = None
    password_file: SecretFromFile | None = None
    # getAllProcessInfo costs ~400 bytes per process: 16 MiB is 40 000 processes.
    max_response_bytes: int = Field(default=16 * 1024 * 1024, ge=64 * 1024)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("unix", "http", "https"):
            raise ValueError(f"scheme must be unix://, http:// or https:// (got {parts.scheme!r})")
        if parts.scheme == "unix" and not parts.path:
            raise ValueError("unix:// url needs a socket path, e.g. unix:///run/supervisor.sock")
        return value

    @field_validator("password_file")
    @classmethod
    def _check_auth(cls, value: Any, info: ValidationInfo) -> Any:
        if value is not None and not info.data.get("username"):
            raise ValueError("needs `username` too")
        return value


@dataclass(frozen=True)
class Process:
    """The fields of supervisor.getProcessInfo that the metrics use."""

    group: str
    name: str
    state: str
    start: int
    pid: int
    exitstatus: int

    @property
    def key(self) -> tuple[str, str]:
        """Return (group, name)."""
        return self.group, self.name


async def read_capped(resp: aiohttp.ClientResponse, limit: int, method: str) -> bytes:
    """Return the body, or raise CollectError as soon as it is known to exceed `limit` bytes."""
    too_big = f"{method}: answer larger than {limit} bytes (max_response_bytes)"
    if resp.content_length is not None and resp.content_length > limit:
        raise CollectError(too_big)
    body = bytearray()
    async for chunk in resp.content.iter_chunked(256 * 1024):
        body += chunk
        if len(body) > limit:
            raise CollectError(too_big)
    return bytes(body)


def parse_answer(answer: bytes, method: str) -> Any:
    """Decode an XML-RPC answer (in a worker thread: a large one takes a while)."""
    try:
        (result,), _ = xmlrpc.client.loads(answer)
    except xmlrpc.client.Fault as fault:
        raise CollectError(f"{method}: fault {fault.faultCode} {fault.faultString}") from None
    except (ExpatError, ValueError, xmlrpc.client.ResponseError) as exc:
        raise CollectError(f"{method}: bad XML-RPC answer: {exc}") from exc
    return result


def parse_processes(answer: Any) -> list[Process]:
    """Validate getAllProcessInfo's answer; raise CollectError naming a missing field."""
    if not isinstance(answer, list):
        raise CollectError(f"getAllProcessInfo returned {type(answer).__name__}, not a list")
    out: list[Process] = []
    for index, item in enumerate(answer):
        if not isinstance(item, dict):
            raise CollectError(f"getAllProcessInfo item {index} is not a struct")
        try:
            statename = str(item["statename"])
            out.append(
                Process(
                    group=str(item["group"]),
                    name=str(item["name"]),
                    state=statename if statename in STATES else "UNKNOWN",
                    start=int(item["start"]),
                    pid=int(item["pid"]),
                    exitstatus=int(item["exitstatus"]),
                )
            )
        except KeyError as exc:
            raise CollectError(f"getAllProcessInfo item {index} lacks field {exc}") from None
        except (TypeError, ValueError) as exc:
            raise CollectError(f"getAllProcessInfo item {index}: {exc}") from None
    return out


@dataclass(frozen=True)
class Seen:
    """What the previous refresh saw of one process, and its restarts so far."""

    start: int
    pid: int
    restarts: int


def observe(
    previous: Mapping[tuple[str, str], Seen], processes: Sequence[Process]
) -> dict[tuple[str, str], Seen]:
    """Count a restart when a process's start time or (non-zero) pid changed since last time.

    The first sighting counts nothing; processes no longer reported are forgotten. At most
    one restart per process per refresh is seen: faster restarts are undercounted.
    """
    out: dict[tuple[str, str], Seen] = {}
    for proc in processes:
        before = previous.get(proc.key)
        restarts = before.restarts if before else 0
        if before is not None and proc.start > 0:
            new_pid = proc.pid != 0 and proc.pid != before.pid
            if proc.start != before.start or new_pid:
                restarts += 1
        out[proc.key] = Seen(proc.start, proc.pid, restarts)
    return out


def build_families(
    ms: MetricSet, processes: Sequence[Process], seen: Mapping[tuple[str, str], Seen]
) -> list[Metric]:
    """Return the supervisor families for one refresh."""
    per_group: dict[str, dict[str, int]] = {}
    for proc in processes:
        labels = {"group": proc.group, "process": proc.name}
        for state in STATES:
            ms.add(SUPERVISOR_PROCESS_STATE, 1 if proc.state == state else 0, state=state, **labels)
        if proc.start > 0:
            ms.add(SUPERVISOR_PROCESS_START_TIMESTAMP_SECONDS, proc.start, **labels)
        ms.add(SUPERVISOR_PROCESS_EXIT_CODE, proc.exitstatus, **labels)
        ms.add(SUPERVISOR_PROCESS_RESTARTS_TOTAL, seen[proc.key].restarts, **labels)
        counts = per_group.setdefault(proc.group, dict.fromkeys(STATES, 0))
        counts[proc.state] += 1
    for group, counts in per_group.items():
        for state, count in counts.items():
            ms.add(SUPERVISOR_PROCESSES, count, group=group, state=state)
    return ms.families()


class SupervisorCollector(Collector[SupervisorConfig]):
    """Read every process's state from one supervisord."""

    kind = "supervisor"
    label = "supervisor"
    config_type = SupervisorConfig
    metrics = (
        SUPERVISOR_PROCESS_STATE,
        SUPERVISOR_PROCESS_START_TIMESTAMP_SECONDS,
        SUPERVISOR_PROCESS_EXIT_CODE,
        SUPERVISOR_PROCESS_RESTARTS_TOTAL,
        SUPERVISOR_PROCESSES,
    )

    def __init__(self, config: SupervisorConfig, context: Context) -> None:
        super().__init__(config, context)
        self._session: aiohttp.ClientSession | None = None
        self._seen: dict[tuple[str, str], Seen] = {}
        parts = urlsplit(config.url)
        if parts.scheme == "unix":
            self._socket: str | None = parts.path
            self._endpoint = "http://localhost/RPC2"
        else:
            self._socket = None
            self._endpoint = config.url.rstrip("/") + "/RPC2"

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.UnixConnector(path=self._socket) if self._socket else None
            headers = {"Content-Type": "text/xml"}
            if self.config.username and self.config.password_file is not None:
                password = self.config.password_file.get_secret_value()
                headers["Authorization"] = basic_auth(self.config.username, password)
            # The effective refresh timeout (defaults applied), not only the instance's own.
            timeout = aiohttp.ClientTimeout(total=self.own_deadline())
            self._session = aiohttp.ClientSession(
                connector=connector, headers=headers, timeout=timeout
            )
        return self._session

    async def call(self, method: str, *params: Any) -> Any:
        """Call one XML-RPC method; raise CollectError for transport, HTTP and RPC faults."""
        body = xmlrpc.client.dumps(params, method, allow_none=False)
        try:
            async with self._client().post(self._endpoint, data=body) as resp:
                if resp.status != 200:
                    raise CollectError(f"{method}: HTTP {resp.status} {resp.reason or ''}".strip())
                answer = await read_capped(resp, self.config.max_response_bytes, method)
        except aiohttp.ClientError as exc:
            raise CollectError(f"cannot reach supervisord at {self._where()}: {exc}") from exc
        return await run_in(pool(self.kind), parse_answer, answer, method)

    def _where(self) -> str:
        return f"unix://{self._socket}" if self._socket else self._endpoint

    async def refresh(self) -> Sequence[Metric]:
        """Fetch getAllProcessInfo, update the restart counters and build the families."""
        processes = parse_processes(await self.call("supervisor.getAllProcessInfo"))
        self._seen = observe(self._seen, processes)
        return build_families(self.metric_set(), processes, self._seen)

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()
