"""Access logs: status classes from nginx/Apache lines and JSON request loggers, end to end."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from exporter.collectors.apps.accesslog import (
    StatusParser,
    combined_status,
    json_status,
    status_class,
)
from exporter.collectors.apps.collector import AppConfig, AppsCollector
from exporter.collectors.base import Context
from tests.exporter._rule_eval import expect_record
from tests.exporter.conftest import Samples, promtool_check, refresh

NGINX = (
    '203.0.113.9 - - [06/Dec/2026:14:37:01 +0000] "GET /api/jobs?page=2 HTTP/1.1" {status} 512'
    ' "https://neffpaving.example/" "Mozilla/5.0 (X11; Linux x86_64)"\n'
)
APACHE_VHOST = (
    "portal.example:443 198.51.100.4 - alice [06/Dec/2026:14:37:02 +0100]"
    ' "POST /login HTTP/1.1" {status} 1043 "-" "curl/8.5.0"\n'
)
PINO_HTTP = {
    "level": 30,
    "time": 1796654221000,
    "req": {"id": 1, "method": "GET", "url": "/health"},
    "res": {"statusCode": 200},
    "responseTime": 3,
    "msg": "request completed",
}
EXPRESS_WINSTON = {
    "level": "info",
    "message": "HTTP GET /api/quotes",
    "meta": {"req": {"url": "/api/quotes"}, "res": {"statusCode": 503}, "responseTime": 12},
}


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (NGINX.format(status=200), "2xx"),
        (NGINX.format(status=502), "5xx"),
        (APACHE_VHOST.format(status=302), "3xx"),
        # Apache `common` (no referer/agent), and an escaped quote inside the request line.
        ('10.0.0.1 - - [06/Dec/2026:14:37:03 +0000] "GET /a\\"b HTTP/1.0" 404 -', "4xx"),
        # nginx writes a bad request line as-is, `"\x16\x03\x01..."` for TLS sent to port 80.
        ('10.0.0.1 - - [06/Dec/2026:14:37:03 +0000] "\\x16\\x03\\x01" 400 157 "-" "-"', "4xx"),
        ('10.0.0.1 - - [06/Dec/2026:14:37:03 +0000] "GET / HTTP/1.1" 999 0 "-" "-"', None),
        ("[2026-12-06 14:37:04] production.ERROR: not a request", None),
    ],
)
def test_combined_lines(line: str, expected: str | None) -> None:
    assert combined_status(line.rstrip("\n")) == expected
    assert StatusParser("auto").status(line.rstrip("\n")) == expected


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (PINO_HTTP, "2xx"),
        (EXPRESS_WINSTON, "5xx"),
        ({"status": "404", "method": "GET"}, "4xx"),  # morgan-json writes strings
        ({"http": {"response": {"status_code": 201}}}, "2xx"),  # ECS
        ({"message": "GET /x", "context": {"status": 500}, "level_name": "INFO"}, "5xx"),
        ({"status": True}, None),
        ({"level": "error", "message": "no request here"}, None),
    ],
)
def test_json_lines(record: dict[str, Any], expected: str | None) -> None:
    assert json_status(json.dumps(record), StatusParser().fields) == expected


def test_configured_field_and_truncated_lines() -> None:
    line = json.dumps({"ctx": {"big": "x" * 100}, "http_status": 502})
    assert StatusParser("json", "http_status").status(line) == "5xx"
    assert StatusParser("json").status(line) is None
    # A line cut by the length cap keeps its head and tail; the status is searched there.
    cut = '{"msg": "GET /report", "ctx": "xxxx...' + '", "statusCode": 504}'
    assert StatusParser("json").status(cut, truncated=True) == "5xx"
    assert StatusParser("combined").status(json.dumps(PINO_HTTP)) is None


def test_status_class_bounds() -> None:
    assert [status_class(v) for v in (100, 599, "200", 204.0)] == ["1xx", "5xx", "2xx", "2xx"]
    assert [status_class(v) for v in (99, 600, "2OO", 200.5, None, [])] == [None] * 6


@pytest.fixture
async def make_app(tmp_path: Path, context: Context) -> AsyncIterator[Callable[..., AppsCollector]]:
    made: list[AppsCollector] = []

    def make(**fields: Any) -> AppsCollector:
        collector = AppsCollector(AppConfig(name="neff", maintenance_file=None, **fields), context)
        made.append(collector)
        return collector

    yield make
    for collector in made:
        await collector.close()


def append(path: Path, *lines: str) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.writelines(lines)


def responses(samples: Samples) -> dict[str, float]:
    return {
        labels["code"]: value for labels, value in samples.all("maintwatch_http_responses_total")
    }


async def test_nginx_log_through_rotation_and_restart(
    tmp_path: Path, make_app: Callable[..., AppsCollector], promtool: str
) -> None:
    log = tmp_path / "access.log"
    append(log, NGINX.format(status=200) * 50)  # history before the exporter starts: not counted
    fields = {"access_logs": [{"path": str(log)}]}
    app = make_app(**fields)
    assert responses(await refresh(app)) == dict.fromkeys(("1xx", "2xx", "3xx", "4xx", "5xx"), 0)
    append(log, NGINX.format(status=200) * 97, NGINX.format(status=502) * 3)
    # logrotate (create): the file is renamed while nginx still writes two lines to it.
    log.rename(tmp_path / "access.log.1")
    append(tmp_path / "access.log.1", NGINX.format(status=404) * 2)
    append(log, NGINX.format(status=301), NGINX.format(status=500))
    samples = await refresh(app)
    assert responses(samples) == {"1xx": 0, "2xx": 97, "3xx": 1, "4xx": 2, "5xx": 4}
    promtool_check(promtool, samples.text())
    # The recording rule makes the error ratio from these counters alone.
    await app.close()
    restarted = make_app(**fields)
    append(log, NGINX.format(status=200))
    assert responses(await refresh(restarted))["2xx"] == 1


async def test_json_request_logs(tmp_path: Path, make_app: Callable[..., AppsCollector]) -> None:
    log = tmp_path / "requests.log"
    log.write_text("")
    app = make_app(access_logs=[{"path": str(log), "format": "json"}])
    await refresh(app)
    append(
        log,
        *(json.dumps(PINO_HTTP) + "\n" for _ in range(19)),
        json.dumps(EXPRESS_WINSTON) + "\n",
        '{"level":50,"msg":"unhandled rejection"}\n',
    )
    assert responses(await refresh(app))["2xx"] == 19
    assert responses(await refresh(app))["5xx"] == 1


async def test_error_ratio_rule_from_logs_alone(
    tmp_path: Path, make_app: Callable[..., AppsCollector], promtool: str
) -> None:
    log = tmp_path / "access.log"
    log.write_text("")
    app = make_app(access_logs=[{"path": str(log)}])
    before = await refresh(app)
    append(log, NGINX.format(status=200) * 94, NGINX.format(status=503) * 6)
    after = await refresh(app)
    # 6 % of the requests failed: the recorded ratio, labelled with the app as its job.
    expect_record(promtool, [before, after], "job:http_requests:error_ratio_rate5m",
                  {"job": "neff"}, 0.06)  # fmt: skip
