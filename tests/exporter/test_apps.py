"""The apps collector on real files: maintenance flag, log levels, directories, runtime, config."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from exporter.collectors.apps.collector import AppConfig, AppsCollector
from exporter.collectors.base import Context
from exporter.collectors.registry import load_config_text
from exporter.runtime import Runtime
from maintwatch.configload import ConfigError
from tests.exporter.conftest import promtool_check, refresh

MakeApp = Callable[..., AppsCollector]

TRACE = (
    '[2025-05-01 12:00:01] production.ERROR: Division by zero {"exception":"[object] '
    "(DivisionByZeroError(code: 0): Division by zero at /var/www/app/Http/X.php:12)\n"
    "[stacktrace]\n"
    "#0 /var/www/vendor/laravel/framework/src/Illuminate/Routing/Controller.php(54): X->show()\n"
    "#1 {main}\n"
    '"}\n'
)


@pytest.fixture
async def make_app(tmp_path: Path, context: Context) -> AsyncIterator[MakeApp]:
    made: list[AppsCollector] = []

    def make(**fields: Any) -> AppsCollector:
        fields.setdefault("path", str(tmp_path / "app"))
        collector = AppsCollector(AppConfig(name="portal", **fields), context)
        made.append(collector)
        return collector

    yield make
    for collector in made:
        await collector.close()


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    root = tmp_path / "app"
    (root / "storage" / "framework").mkdir(parents=True)
    (root / "storage" / "logs").mkdir(parents=True)
    return root


def append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(text)


async def test_maintenance_mode_toggles(app_dir: Path, make_app: MakeApp) -> None:
    app = make_app()
    samples = await refresh(app)
    assert samples.get("maintwatch_app_maintenance_mode", app="portal") == 0
    assert samples.get("maintwatch_app_maintenance_since_timestamp_seconds") is None
    down = app_dir / "storage" / "framework" / "down"
    # Laravel 8+ writes no `time`: the file's mtime says since when.
    down.write_text(json.dumps({"except": [], "redirect": None, "retry": 60, "status": 503}))
    os.utime(down, (1746100000, 1746100000))
    samples = await refresh(app)
    assert samples.get("maintwatch_app_maintenance_mode", app="portal") == 1
    assert samples.get("maintwatch_app_maintenance_since_timestamp_seconds") == 1746100000
    # Older Laravel writes `time`: it wins over the mtime.
    down.write_text(json.dumps({"time": 1746000000, "message": "Updating", "retry": None}))
    samples = await refresh(app)
    assert samples.get("maintwatch_app_maintenance_since_timestamp_seconds") == 1746000000
    down.unlink()
    samples = await refresh(app)
    assert samples.get("maintwatch_app_maintenance_mode") == 0
    assert samples.get("maintwatch_app_maintenance_since_timestamp_seconds") is None


async def test_any_flag_file_for_other_apps(tmp_path: Path, make_app: MakeApp) -> None:
    flag = tmp_path / "MAINTENANCE"
    app = make_app(path=None, maintenance_file=str(flag))
    assert (await refresh(app)).get("maintwatch_app_maintenance_mode") == 0
    flag.write_text("not json at all")
    os.utime(flag, (1700000000, 1700000000))
    samples = await refresh(app)
    assert samples.get("maintwatch_app_maintenance_mode") == 1
    assert samples.get("maintwatch_app_maintenance_since_timestamp_seconds") == 1700000000


async def test_laravel_log_levels_count_entries_once(app_dir: Path, make_app: MakeApp) -> None:
    log = app_dir / "storage" / "logs" / "laravel.log"
    log.write_text("[2025-04-30 23:59:59] production.ERROR: history is not recounted\n")
    app = make_app(logs=[{"path": "storage/logs/laravel.log"}], maintenance_file=None)
    samples = await refresh(app)
    assert samples.get("maintwatch_log_messages_total", level="error") == 0
    append(log, TRACE)
    append(log, "[2025-05-01 12:00:02] production.WARNING: Slow response\n")
    append(log, "[2025-05-01T12:00:03.123456+00:00] local.info: ISO datetime\n")
    append(log, "[2025-05-01 12:00:04] production.EMERGENCY: Disk full\n")
    append(log, "[2025-05-01 12:00:05] production.SHOUTING: unknown level\n")
    samples = await refresh(app)
    counts = {labels["level"]: v for labels, v in samples.all("maintwatch_log_messages_total")}
    assert counts == {
        "debug": 0,
        "info": 1,
        "notice": 0,
        "warning": 1,
        "error": 1,
        "critical": 0,
        "alert": 0,
        "emergency": 1,
        "other": 1,
    }
    assert samples.get("maintwatch_app_maintenance_mode") is None


async def test_json_lines_with_configured_level_field(app_dir: Path, make_app: MakeApp) -> None:
    log = app_dir / "storage" / "logs" / "worker.json"
    log.write_text("")
    app = make_app(
        logs=[{"path": str(log), "format": "json", "level_field": "level"}],
        maintenance_file=None,
    )
    await refresh(app)
    entries = [
        {"message": "monolog json", "level": 400, "level_name": "ERROR"},
        {"message": "pino", "level": 40},
        {"message": "name", "level": "warn"},
        {"message": "no level"},
    ]
    append(log, "".join(json.dumps(e) + "\n" for e in entries) + "not json\n")
    samples = await refresh(app)
    assert samples.get("maintwatch_log_messages_total", level="error") == 1
    assert samples.get("maintwatch_log_messages_total", level="warning") == 2
    assert samples.get("maintwatch_log_messages_total", level="other") == 1


async def test_auto_format_reads_default_json_fields(app_dir: Path, make_app: MakeApp) -> None:
    log = app_dir / "storage" / "logs" / "app.log"
    log.write_text("")
    app = make_app(logs=[{"path": "storage/logs/app.log"}], maintenance_file=None)
    await refresh(app)
    append(log, json.dumps({"severity": "CRITICAL", "message": "gcp style"}) + "\n")
    append(log, json.dumps({"context": "a dumped object, not an entry"}) + "\n")
    samples = await refresh(app)
    assert samples.get("maintwatch_log_messages_total", level="critical") == 1
    assert samples.get("maintwatch_log_messages_total", level="other") == 0


async def test_ten_megabyte_json_line(app_dir: Path, make_app: MakeApp) -> None:
    log = app_dir / "storage" / "logs" / "app.log"
    log.write_text("")
    app = make_app(logs=[{"path": "storage/logs/app.log", "format": "json"}], path=str(app_dir))
    await refresh(app)
    huge = {"message": "upload", "context": {"blob": "x" * (10 * 1024 * 1024)}, "level": 550}
    append(log, json.dumps(huge) + "\n" + json.dumps({"level_name": "NOTICE"}) + "\n")
    samples = await refresh(app)
    assert samples.get("maintwatch_log_messages_total", level="alert") == 1
    assert samples.get("maintwatch_log_messages_total", level="notice") == 1


async def test_daily_files_roll_over_without_double_counting(
    app_dir: Path, make_app: MakeApp
) -> None:
    logs = app_dir / "storage" / "logs"
    day1 = logs / "laravel-2025-05-01.log"
    day1.write_text("[2025-05-01 00:00:00] production.ERROR: before start\n")
    app = make_app(logs=[{"path": "storage/logs/laravel-*.log"}], maintenance_file=None)
    await refresh(app)
    append(day1, "[2025-05-01 23:59:59] production.ERROR: last of day 1\n")
    (logs / "laravel-2025-05-02.log").write_text("[2025-05-02 00:00:01] production.ERROR: day 2\n")
    samples = await refresh(app)
    assert samples.get("maintwatch_log_messages_total", level="error") == 2
    samples = await refresh(app)
    assert samples.get("maintwatch_log_messages_total", level="error") == 2


async def test_rotation_through_the_collector(app_dir: Path, make_app: MakeApp) -> None:
    log = app_dir / "storage" / "logs" / "laravel.log"
    log.write_text("")
    app = make_app(logs=[{"path": "storage/logs/laravel.log"}], maintenance_file=None)
    await refresh(app)
    append(log, "[2025-05-01 12:00:00] production.ERROR: one\n")
    log.rename(log.with_name("laravel.log.1"))
    log.write_text("[2025-05-01 12:00:01] production.ERROR: two\n")
    samples = await refresh(app)
    assert samples.get("maintwatch_log_messages_total", level="error") == 2
    with log.open("r+") as handle:  # copytruncate
        handle.truncate(0)
    append(log, "[2025-05-01 12:00:02] production.ERROR: three\n")
    samples = await refresh(app)
    assert samples.get("maintwatch_log_messages_total", level="error") == 3


async def test_restart_with_state_dir_does_not_recount(
    app_dir: Path, tmp_path: Path, make_app: MakeApp
) -> None:
    log = app_dir / "storage" / "logs" / "laravel.log"
    log.write_text("")
    fields = {"logs": [{"path": "storage/logs/laravel.log"}], "maintenance_file": None}
    first = make_app(**fields)
    await refresh(first)
    append(log, "[2025-05-01 12:00:00] production.ERROR: before restart\n")
    assert (await refresh(first)).get("maintwatch_log_messages_total", level="error") == 1
    await first.close()
    append(log, "[2025-05-01 12:00:01] production.ERROR: while down\n")
    second = make_app(**fields)
    samples = await refresh(second)
    assert samples.get("maintwatch_log_messages_total", level="error") == 1
    assert list((tmp_path / "state").iterdir())


async def test_directory_sizes(app_dir: Path, tmp_path: Path, make_app: MakeApp) -> None:
    sandbox = app_dir / "storage" / "sandbox"
    deep = sandbox.joinpath(*[f"d{i}" for i in range(50)])
    deep.mkdir(parents=True)
    (sandbox / "a.txt").write_bytes(b"a" * 100)
    (deep / "b.bin").write_bytes(b"b" * 1000)
    os.link(deep / "b.bin", sandbox / "b-link.bin")  # a hard link is counted once
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"o" * 5000)
    (sandbox / "link").symlink_to(outside)  # symlinks are not followed
    (app_dir / "empty").mkdir()
    app = make_app(
        directories=[{"name": "sandbox", "path": "storage/sandbox"}, {"name": "e", "path": "empty"}]
    )
    samples = await refresh(app)
    assert samples.get("maintwatch_directory_size_bytes", directory="sandbox") == 1100
    assert samples.get("maintwatch_directory_files", app="portal", directory="sandbox") == 2
    assert samples.get("maintwatch_directory_size_bytes", directory="e") == 0
    assert samples.get("maintwatch_directory_files", directory="e") == 0


async def test_promtool_accepts_the_output(app_dir: Path, make_app: MakeApp, promtool: str) -> None:
    (app_dir / "storage" / "framework" / "down").write_text("{}")
    log = app_dir / "storage" / "logs" / "laravel.log"
    log.write_text("")
    app = make_app(
        logs=[{"path": "storage/logs/laravel.log"}],
        directories=[{"name": "logs", "path": "storage/logs"}],
    )
    await refresh(app)
    append(log, TRACE)
    promtool_check(promtool, (await refresh(app)).text())


async def test_runtime_marks_down_and_recovers(app_dir: Path, context: Context) -> None:
    config = AppConfig(
        name="portal",
        path=app_dir,
        directories=[{"name": "sandbox", "path": "storage/sandbox"}],
    )
    rt = Runtime(structlog.get_logger("test"))
    collector = AppsCollector(config, context)
    try:
        with capture_logs() as logs:
            await rt.apply([(collector, 0.05, 5.0)])
            async with asyncio.timeout(10):
                await rt.wait_ready()
        (state,) = rt.states()
        assert not state.up
        assert "watched directory" in state.last_error
        assert [e["event"] for e in logs] == ["collector_refresh_failed"]
        names = {f.name for f in rt.families()}
        assert "maintwatch_app_maintenance_mode" not in names  # measured values are not stale
        (app_dir / "storage" / "sandbox").mkdir()
        async with asyncio.timeout(10):
            while not rt.states()[0].up:
                await asyncio.sleep(0.02)
        assert "maintwatch_directory_files" in {f.name for f in rt.families()}
    finally:
        await rt.close()


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            "apps: [{name: a, logs: [{path: /x/laravel.log}]}]",
            "x.yml: apps[0].maintenance_file: relative path 'storage/framework/down' "
            "needs the app's `path` (or null)",
        ),
        (
            "apps: [{name: a, path: srv/app}]",
            "x.yml: apps[0].path: must be an absolute path, got 'srv/app'",
        ),
        (
            "apps: [{name: a, maintenance_file: null}]",
            "x.yml: apps[0]: nothing to watch: set maintenance_file, logs, access_logs or"
            " directories",
        ),
        (
            "apps: [{name: a, maintenance_file: null, logs: [{path: l.log}]}]",
            "x.yml: apps[0].logs: relative [0].path 'l.log' needs the app's `path`",
        ),
        (
            "apps: [{name: a, path: /srv, logs: [{path: l.log, format: xml}]}]",
            "x.yml: apps[0].logs[0].format: expected one of: auto, monolog, json, got 'xml'",
        ),
        (
            "apps: [{name: a, path: /srv, logs: [{path: l.log, max_line_bytes: 10}]}]",
            "x.yml: apps[0].logs[0].max_line_bytes: must be at least 1024",
        ),
        (
            "apps: [{name: a, path: /s, directories: [{name: s, path: s}, {name: s, path: s/*}]}]",
            "x.yml: apps[0].directories: [1].path: globs are not supported; duplicate name 's'",
        ),
        (
            "apps: [{name: a, path: /srv, directories: [{name: 'a b', path: s}]}]",
            "x.yml: apps[0].directories[0].name: must match the pattern ^[A-Za-z0-9_.:-]+$,"
            " got 'a b'",
        ),
        (
            "apps: [{name: a, path: /srv, logs: [{path: l.log}, {path: 'l/*/../../x.log'}]}]",
            "x.yml: apps[0].logs: [1].path: '..' after a wildcard would leave the glob's directory",
        ),
        ("apps: [{name: a, path: /srv, colour: red}]", "x.yml: apps[0].colour: unknown field"),
    ],
)
def test_config_errors(section: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config_text(section, "x.yml")
    assert caught.value.problems == [message]


def test_config_example_loads() -> None:
    config = load_config_text(
        """
apps:
  - name: tongacp
    path: /var/www/tongacp
    logs:
      - path: storage/logs/laravel-*.log
      - path: /var/log/worker.json
        format: json
        level_field: level_name
    directories:
      - name: sandbox
        path: storage/sandbox
""",
        "x.yml",
    )
    (app,) = config.instances()["apps"]
    assert isinstance(app, AppConfig)
    assert app.resolve("storage/framework/down") == "/var/www/tongacp/storage/framework/down"
