"""The supervisor collector against a real supervisord started by each test."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import structlog

from exporter.collectors.base import Context
from exporter.collectors.registry import load_config_text
from exporter.collectors.supervisor import (
    STATES,
    Process,
    Seen,
    SupervisorCollector,
    SupervisorConfig,
    observe,
    parse_processes,
)
from exporter.runtime import InstanceState, Runtime
from maintwatch.configload import ConfigError
from tests.conftest import free_port
from tests.exporter import _supervisor_helpers as sh
from tests.exporter._process_helpers import running_exporter
from tests.exporter._rule_eval import expect_alert
from tests.exporter.conftest import Samples, promtool_check, refresh

supervisord = sh.supervisord
ERRORS = "maintwatch_collector_errors_total"
Make = Callable[[str], SupervisorCollector]
WORKERS = {f"tongacp-worker:tongacp-worker_{n:02d}": "RUNNING" for n in range(8)}


def supervisor_config(section: str) -> SupervisorConfig:
    """Validate one `supervisor:` instance written as YAML."""
    instance = load_config_text(f"supervisor:\n{section}", "x.yml").instances()["supervisor"][0]
    assert isinstance(instance, SupervisorConfig)
    return instance


@pytest.fixture
async def make_collector(context: Context) -> AsyncIterator[Make]:
    """Build collectors from YAML and close their sessions at teardown."""
    made: list[SupervisorCollector] = []

    def make(section: str) -> SupervisorCollector:
        made.append(SupervisorCollector(supervisor_config(section), context))
        return made[-1]

    yield make
    for collector in made:
        await collector.close()


def state_of(samples: Samples, process: str) -> str:
    """Return the state whose state-set series is 1."""
    current = [
        labels["state"]
        for labels, value in samples.all("maintwatch_supervisor_process_state")
        if labels["process"] == process and value == 1
    ]
    assert len(current) == 1, current
    return current[0]


def is_up(state: InstanceState) -> bool:
    """Read `up` afresh (mypy would narrow a plain attribute read across awaits)."""
    return state.up


async def test_states_exit_codes_and_groups_over_unix_socket(
    supervisord: sh.Supervisord, make_collector: Make, promtool: str
) -> None:
    wanted = {**WORKERS, "crasher:crasher": "FATAL", "oneshot:oneshot": "EXITED"}
    await asyncio.to_thread(supervisord.wait_states, wanted)
    assert "stopped" in await asyncio.to_thread(supervisord.ctl, "stop", "manual")
    collector = make_collector(f"  - {{name: web1, url: 'unix://{supervisord.socket}'}}\n")
    samples = await refresh(collector)
    assert state_of(samples, "tongacp-worker_00") == "RUNNING"
    assert state_of(samples, "crasher") == "FATAL"
    assert state_of(samples, "oneshot") == "EXITED"
    assert state_of(samples, "manual") == "STOPPED"
    # One series per state for each process: dashboards can sum without gaps.
    assert len(samples.all("maintwatch_supervisor_process_state")) == 12 * len(STATES)

    def count(group: str, state: str) -> float | None:
        return samples.get("maintwatch_supervisor_processes", group=group, state=state)

    assert count("tongacp-worker", "RUNNING") == 8
    assert count("tongacp-worker", "FATAL") == 0
    assert count("crasher", "FATAL") == 1
    assert samples.get("maintwatch_supervisor_process_exit_code", process="oneshot") == 2
    # supervisord drops the status of an exit "too quickly" (BACKOFF → FATAL): it reports 0.
    assert samples.get("maintwatch_supervisor_process_exit_code", process="crasher") == 0
    start = samples.get(
        "maintwatch_supervisor_process_start_timestamp_seconds",
        supervisor="web1",
        group="tongacp-worker",
        process="tongacp-worker_07",
    )
    assert start is not None
    assert start > 1_700_000_000
    promtool_check(promtool, samples.text())


async def test_restart_is_counted(supervisord: sh.Supervisord, make_collector: Make) -> None:
    await asyncio.to_thread(supervisord.wait_states, WORKERS)
    collector = make_collector(f"  - {{name: web1, url: 'unix://{supervisord.socket}'}}\n")
    samples = await refresh(collector)
    restarts = "maintwatch_supervisor_process_restarts_total"
    assert samples.get(restarts, process="tongacp-worker_03") == 0
    await asyncio.to_thread(supervisord.ctl, "restart", "tongacp-worker:tongacp-worker_03")
    await asyncio.to_thread(supervisord.wait_states, WORKERS)
    samples = await refresh(collector)
    assert samples.get(restarts, process="tongacp-worker_03") == 1
    assert samples.get(restarts, process="tongacp-worker_04") == 0
    samples = await refresh(collector)
    assert samples.get(restarts, process="tongacp-worker_03") == 1


async def test_http_with_basic_auth(
    supervisord: sh.Supervisord, make_collector: Make, tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{supervisord.port}"
    good = make_collector(
        f"  - {{name: web1, url: '{url}', username: mw, "
        f"password_file: {supervisord.password_file}}}\n"
    )
    samples = await refresh(good)
    assert samples.get("maintwatch_supervisor_processes", group="manual", state="RUNNING") == 1
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-password\n")
    bad = make_collector(
        f"  - {{name: web2, url: '{url}', username: mw, password_file: {wrong}}}\n"
    )
    rt = Runtime(structlog.get_logger("test"))
    try:
        await rt.apply([(bad, 3600.0, 5.0)])
        await rt.wait_ready()
        (state,) = rt.states()
        assert not state.up
        assert "HTTP 401" in state.last_error
    finally:
        await rt.close()


async def test_supervisord_down(supervisord: sh.Supervisord, make_collector: Make) -> None:
    collector = make_collector(f"  - {{name: web1, url: 'unix://{supervisord.socket}'}}\n")
    rt = Runtime(structlog.get_logger("test"))
    try:
        await rt.apply([(collector, 3600.0, 5.0)])
        await rt.wait_ready()
        (state,) = rt.states()
        assert is_up(state)
        await asyncio.to_thread(supervisord.stop)
        await rt.refresh_once(state)
        assert not is_up(state)
        assert "cannot reach supervisord" in state.last_error
        names = {f.name for f in rt.families()}
        assert not any(n.startswith("maintwatch_supervisor_") for n in names)
    finally:
        await rt.close()


def _proc(name: str, start: int, pid: int) -> Process:
    return Process("g", name, "RUNNING", start, pid, 0)


def test_observe_counts_start_or_pid_changes_once() -> None:
    first = observe({}, [_proc("a", 100, 10), _proc("b", 100, 11)])
    assert first == {("g", "a"): Seen(100, 10, 0), ("g", "b"): Seen(100, 11, 0)}
    # Same second, new pid (a fast restart) and a new start time both count once.
    second = observe(first, [_proc("a", 100, 12), _proc("b", 105, 13)])
    assert [s.restarts for s in second.values()] == [1, 1]
    # Stopping (pid 0, start unchanged) is not a restart; a process that left is forgotten.
    third = observe(second, [_proc("a", 100, 0)])
    assert third == {("g", "a"): Seen(100, 0, 1)}


def test_parse_processes_names_bad_fields() -> None:
    info = {"group": "g", "name": "a", "statename": "WEIRD", "start": 1, "pid": 2, "exitstatus": 0}
    assert parse_processes([info])[0].state == "UNKNOWN"
    with pytest.raises(Exception, match="item 0 lacks field 'pid'"):
        parse_processes([{k: v for k, v in info.items() if k != "pid"}])
    with pytest.raises(Exception, match="not a list"):
        parse_processes({"oops": 1})


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("  - {name: a, url: 'ftp://x'}\n", "supervisor[0].url: scheme must be"),
        ("  - {name: a, url: 'unix://'}\n", "supervisor[0].url: unix:// url needs a socket path"),
        ("  - {name: a, password_file: /etc/hostname}\n", "supervisor[0].password_file: needs"),
        ("  - {name: a, password_file: /nonexistent}\n", "supervisor[0].password_file: cannot"),
        ("  - {name: a, sock: x}\n", "supervisor[0].sock: unknown field"),
    ],
)
def test_config_errors_are_located(section: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        supervisor_config(section)
    assert any(p.startswith(f"x.yml: {message}") for p in caught.value.problems), (
        caught.value.problems
    )


async def test_stopped_on_purpose_raises_no_worker_alert(
    supervisord: sh.Supervisord, make_collector: Make, promtool: str
) -> None:
    wanted = {**WORKERS, "crasher:crasher": "FATAL", "oneshot:oneshot": "EXITED"}
    await asyncio.to_thread(supervisord.wait_states, wanted)
    # An operator stops the whole worker group, and `reports` is autostart=false: STOPPED is
    # chosen, not a failure.
    await asyncio.to_thread(supervisord.ctl, "stop", "tongacp-worker:*")
    await asyncio.to_thread(supervisord.ctl, "stop", "manual")
    stopped = dict.fromkeys(WORKERS, "STOPPED")
    await asyncio.to_thread(supervisord.wait_states, {**stopped, "manual:manual": "STOPPED"})
    collector = make_collector(f"  - {{name: web1, url: 'unix://{supervisord.socket}'}}\n")
    samples = await refresh(collector)
    count = "maintwatch_supervisor_processes"
    assert samples.get(count, group="tongacp-worker", state="STOPPED") == 8
    assert samples.get(count, group="reports", state="STOPPED") == 1
    # FATAL and EXITED are failures: only their groups alert, on the rules as generated.
    failed = [{"supervisor": "web1", "group": g} for g in ("crasher", "oneshot")]
    expect_alert(promtool, samples, "QueueWorkersDown", failed)
    expect_alert(promtool, samples, "QueueWorkersMissing", failed)


def test_a_huge_answer_fails_its_instance_only(tmp_path: Path) -> None:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.exporter._hostile_server", str(port), "192"]
    )
    config = (
        f"supervisor: [{{name: web1, url: 'http://127.0.0.1:{port}', interval: 1s, timeout: 3s}}]\n"
        f"http: [{{name: neighbour, url: 'http://127.0.0.1:{port}/health', interval: 1s, "
        "timeout: 3s}]\n"
    )
    try:
        with running_exporter(tmp_path, config) as exporter:
            sup = {"collector": "supervisor", "name": "web1"}
            text = exporter.until(lambda t: (exporter.value(t, ERRORS, **sup) or 0) >= 3)
            assert exporter.value(text, "maintwatch_http_probe_success", target="neighbour") == 1
            # 192 MiB were offered three times; what was read stayed under the 16 MiB cap.
            assert exporter.status("VmHWM") < 200 * 1024
            assert exporter.stop() is not None
    finally:
        server.kill()
        server.wait()
    failed = [e for e in exporter.events() if e["event"] == "collector_refresh_failed"]
    assert [e["reason"] for e in failed] == [
        "supervisor.getAllProcessInfo: answer larger than 16777216 bytes (max_response_bytes)"
    ]
    assert not [e for e in exporter.events() if e["event"] == "http_probe_failed"]
