"""Secrets never show: a realistic session against the real processes, everything captured.

The receiver runs as `maintwatch-receiver --log.level=debug` with every secret in a file, every
channel type (half of them failing, some failures echoing the request), the PostgreSQL store;
every endpoint and failure path is exercised. Its whole log, every HTTP answer and `/metrics`
are then searched for every secret value. The exporter gets the same with a database DSN
password, a Redis password and an HTTP probe's secret header, all failing.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
import pytest

from tests.conftest import free_port
from tests.receiver._channel_helpers import recording_server
from tests.receiver._helpers import (
    T0,
    answers_200,
    fixture_bytes,
    postgres_database,
    wait_for,
)
from tests.receiver._process_helpers import fake_twilio, file_lines
from tests.security._security_helpers import HOSTILE, link_token, slack_headers, twilio_signature
from tests.security._session_helpers import (
    ALICE_PHONE,
    Mailbox,
    echo_failure,
    full_config,
    make_secrets,
    smtp_server,
)

BIN = Path(sys.executable).parent
FINAL = ("sent", "failed", "unknown")


class Transcript:
    """Every answer of a session, kept for the final search."""

    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        self.http, self.base = http, base
        self.texts: list[str] = []

    async def call(
        self, method: str, path: str, *, expect: int | None = None, **kwargs: Any
    ) -> tuple[int, str, dict[str, str]]:
        """Send one request; keep status, headers and body; check the status if given."""
        async with self.http.request(
            method, self.base + path, allow_redirects=False, **kwargs
        ) as response:
            text = await response.text(errors="replace")
            headers = dict(response.headers)
        self.texts.append(f"{method} {path} -> {response.status}\n{headers}\n{text}")
        assert expect is None or response.status == expect, (method, path, response.status, text)
        return response.status, text, headers


def needles(secrets: dict[str, str]) -> dict[str, str]:
    """Return every secret, plus the secret parts of the secret URLs (path, query)."""
    found = dict(secrets)
    for name in ("slack_url", "teams_url", "mattermost_url"):
        if name not in secrets:
            continue
        parts = urlsplit(secrets[name])
        found[f"{name} path"] = parts.path
        if parts.query:
            found[f"{name} query"] = parts.query
    return found


def leaks(text: str, secrets: dict[str, str]) -> list[str]:
    """Return the names of the secrets that occur in `text`."""
    return sorted(name for name, value in needles(secrets).items() if value in text)


@asynccontextmanager
async def process(args: list[str], log: Path) -> AsyncIterator[subprocess.Popen[bytes]]:
    """Run a process with stdout and stderr into `log`; SIGTERM it (SIGKILL if stuck) at the end."""
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


async def until_ready(
    http: aiohttp.ClientSession, url: str, log: Path, path: str = "/-/healthy"
) -> None:
    """Wait until a process answers `path` with 200."""
    probe = answers_200(http, f"{url}{path}")
    await wait_for(probe, timeout=30, what=f"{url} up; log: {log.read_text(errors='replace')}")


async def deliveries_done(t: Transcript, token: str) -> bool:
    """Return whether every notification of incident 1 reached a final state."""
    auth = {"Authorization": f"Bearer {token}"}
    _, text, _ = await t.call("GET", "/api/v1/incidents/1", headers=auth, expect=200)
    rows = json.loads(text)["notifications"]
    return bool(rows) and all(row["status"] in FINAL for row in rows)


async def exercise_intake(t: Transcript, s: dict[str, str]) -> None:
    """Health, metrics and the Alertmanager webhook: good, unauthenticated, malformed."""
    for path in ("/-/healthy", "/-/ready", "/metrics", "/api/openapi.yaml"):
        await t.call("GET", path, expect=200)
    good = {"Authorization": f"Bearer {s['webhook_token']}"}
    body = fixture_bytes("firing-single.json")
    await t.call("POST", "/webhooks/alertmanager", data=body, expect=401)
    await t.call("POST", "/webhooks/alertmanager", data=body, headers={"Authorization": "Bearer x"})
    await t.call("POST", "/webhooks/alertmanager", data=b"{nope", headers=good, expect=400)
    await t.call("POST", "/webhooks/alertmanager", data=body, headers=good, expect=200)
    hostile = json.loads(body)
    hostile["groupKey"], hostile["commonLabels"]["evil"] = HOSTILE, HOSTILE
    await t.call("POST", "/webhooks/alertmanager", json=hostile, headers=good, expect=200)


async def exercise_api(t: Transcript, s: dict[str, str]) -> None:
    """The API with the right token, a wrong one and the webhook token."""
    auth = {"Authorization": f"Bearer {s['api_token']}"}
    for path in ("/api/v1/incidents", "/api/v1/incidents/1", "/api/v1/oncall"):
        await t.call("GET", path, headers=auth, expect=200)
        await t.call(
            "GET", path, headers={"Authorization": f"Bearer {s['webhook_token']}"}, expect=401
        )
    await t.call("GET", "/api/v1/schedules/none.ics", headers=auth, expect=404)
    await t.call("GET", "/api/v1/incidents/999", headers=auth, expect=404)
    await t.call("POST", "/api/v1/incidents/1/ack", headers=auth, data=b"{bad", expect=400)
    await t.call("POST", "/api/v1/incidents/1/ack", headers=auth, json={"by": "alice"}, expect=200)
    await t.call("POST", "/api/v1/incidents/1/unack", headers=auth, expect=200)
    await t.call("POST", "/api/v1/incidents/999/resolve", headers=auth, expect=404)


async def exercise_web(t: Transcript, s: dict[str, str], link: str) -> None:
    """Login (wrong and right), pages, a forged form, and the signed link's paths."""
    form = {"name": "alice", "password": "wrong", "next": "/"}
    await t.call("POST", "/login", data=form, expect=401)
    _, _, headers = await t.call(
        "POST", "/login", data={**form, "password": s["web_password"]}, expect=303
    )
    cookie = {"Cookie": headers["Set-Cookie"].split(";", 1)[0]}
    for path in ("/", "/incidents/1", "/incidents/999", "/login"):
        await t.call("GET", path, headers=cookie)
    await t.call("POST", "/incidents/1/ack", headers=cookie, data={"csrf": "x"}, expect=403)
    await t.call("GET", link, expect=200)
    await t.call("POST", link, expect=200)
    await t.call("POST", link, expect=409)
    await t.call("GET", "/ack/" + link_token(b"guess", 1, "ack", T0 * 2), expect=403)
    await t.call("GET", "/ack/garbage", expect=400)


async def exercise_inbound(t: Transcript, s: dict[str, str], external: str) -> None:
    """Twilio, Slack and Mattermost callbacks: signed right, wrong, stale."""
    params = {"From": ALICE_PHONE, "To": "+4930000000", "Body": "1 res"}
    signature = twilio_signature(
        s["twilio_inbound_token"], f"{external}/webhooks/twilio/sms", params
    )
    await t.call(
        "POST", "/webhooks/twilio/sms", data=params, headers={"X-Twilio-Signature": "x"}, expect=403
    )
    await t.call(
        "POST",
        "/webhooks/twilio/sms",
        data=params,
        headers={"X-Twilio-Signature": signature},
        expect=200,
    )
    click = {
        "type": "block_actions",
        "user": {"username": "alice.a"},
        "actions": [{"value": "ack:1"}],
    }
    body = urlencode({"payload": json.dumps(click)}).encode()
    now = time.time()
    for secret, stamp, code in (
        (s["slack_signing_secret"], now, 200),
        ("x", now, 401),
        (s["slack_signing_secret"], now - 600, 401),
    ):
        await t.call(
            "POST",
            "/webhooks/slack",
            data=body,
            headers=slack_headers(secret, body, stamp),
            expect=code,
        )
    forged = link_token(b"guess", 1, "ack", time.time() + 60)
    await t.call("POST", "/webhooks/mattermost", json={"context": {"token": forged}}, expect=403)


@pytest.mark.slow
async def test_receiver_session_reveals_no_secret(tmp_path: Path, unique: str) -> None:
    refused = f"http://127.0.0.1:{free_port()}"  # nothing listens: connection refused
    async with (
        postgres_database(unique) as dsn,
        recording_server(echo_failure) as chat,
        fake_twilio() as twilio,
        aiohttp.ClientSession() as http,
    ):
        secrets = make_secrets(tmp_path, chat.url, refused)
        twilio.answers = [500]  # the first SMS fails (retryable), the retry goes out
        mailbox = Mailbox(secrets["smtp_password"])
        with smtp_server(mailbox) as smtp:
            port = free_port()
            external = f"http://127.0.0.1:{port}"
            pg_password = tmp_path / "pg_password"
            store = f"store: {{type: postgres, dsn: '{dsn}', password_file: {pg_password}}}"
            config = tmp_path / "receiver.yml"
            config.write_text(full_config(tmp_path, store, external, smtp, chat.url, twilio.url))
            log = tmp_path / "receiver.log"
            args = [
                str(BIN / "maintwatch-receiver"),
                f"--config.file={config}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=debug",
            ]
            async with process(args, log) as proc:
                t = Transcript(http, external)
                # Ready, not only up: the intake's applier process starts beside the receiver.
                await until_ready(http, external, log, "/-/ready")
                await exercise_intake(t, secrets)
                await wait_for(lambda: deliveries_done(t, secrets["api_token"]), what="deliveries")
                await exercise_api(t, secrets)
                link = file_lines(tmp_path / "pages.jsonl")[0]["links"]["ack"]
                await exercise_web(t, secrets, link.removeprefix(external))
                await exercise_inbound(t, secrets, external)
                await t.call("GET", "/metrics", expect=200)
                proc.send_signal(signal.SIGTERM)
                assert proc.wait(timeout=30) == 0
    output = log.read_text(errors="replace")
    # The session did reach every failure path it claims to.
    for event in (
        "notification_failed",
        "notification_retry",
        "link_refused",
        "chat_action_rejected",
        "sms_reply_rejected",
        "webhook_rejected",
    ):
        assert event in output, event
    assert mailbox.messages  # the good paths delivered
    assert twilio.bodies
    answers = "\n".join(t.texts)
    assert "HTTP 404" in answers  # failure reasons are shown, without the secret URL
    assert "authentication failed: 535" in answers
    assert not leaks(output, secrets), leaks(output, secrets)
    assert not leaks(answers, secrets), leaks(answers, secrets)


def exporter_config(tmp_path: Path, secrets: dict[str, str], closed: int, host: str) -> str:
    """Return an exporter config whose every collector fails, each holding a secret."""
    pg = f"postgresql://monitor@127.0.0.1:{closed}/app"
    pg_url = pg.replace("monitor@", f"monitor:{secrets['dsn_password']}@")
    redis_url = f"redis://:{secrets['redis_url_password']}@127.0.0.1:{closed}/0"
    queues = "flavor: laravel, queues: [default]"
    userinfo = f"http://probe:{secrets['probe_userinfo']}@{host}/hook"
    return "\n".join(
        [
            "defaults: {interval: 1s, timeout: 1s}",
            "databases:",
            f"  - {{name: pg-url, driver: postgres, dsn: '{pg_url}'}}",
            f"  - {{name: pg-file, driver: postgres, dsn: '{pg}',",
            f"     password_file: {tmp_path / 'pg_password_file'}}}",
            "  - {name: maria, driver: mysql, dsn: 'mysql://nosuchuser@127.0.0.1:3306/mysql',",
            f"     password_file: {tmp_path / 'mysql_password'}}}",
            "redis:",
            "  - {name: rfile, url: 'redis://127.0.0.1:6379/0',",
            f"     password_file: {tmp_path / 'redis_password'}, {queues}}}",
            f"  - {{name: rurl, url: '{redis_url}', {queues}}}",
            "http:",
            f"  - {{name: probe, url: 'http://{host}/hook',",
            f"     header_files: {{Authorization: {tmp_path / 'probe_header'}}}}}",
            f"  - {{name: userinfo, url: '{userinfo}'}}",
            "",
        ]
    )


@pytest.mark.slow
async def test_exporter_failures_reveal_no_secret(tmp_path: Path) -> None:
    secrets = {
        "dsn_password": "dsn-password-b81c2f",
        "pg_password_file": "pg-password-file-55e0a1",
        "mysql_password": "mysql-password-9d3b7e",
        "redis_password": "redis-password-0f4c6d",
        "redis_url_password": "redis-url-password-7a1e90",
        "probe_header": "Bearer probe-header-secret-3c9d",
        "probe_userinfo": "probe-userinfo-secret-e12f",
    }
    for name in ("pg_password_file", "mysql_password", "redis_password", "probe_header"):
        (tmp_path / name).write_text(secrets[name] + "\n")
    closed = free_port()
    port = free_port()
    async with recording_server(echo_failure) as echo, aiohttp.ClientSession() as http:
        host = echo.url.removeprefix("http://")
        config = tmp_path / "exporter.yml"
        config.write_text(exporter_config(tmp_path, secrets, closed, host))
        log = tmp_path / "exporter.log"
        args = [
            sys.executable,
            "-m",
            "exporter",
            f"--config.file={config}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=debug",
        ]
        async with process(args, log) as proc:
            url = f"http://127.0.0.1:{port}"
            t = Transcript(http, url)
            await until_ready(http, url, log)

            async def all_failed() -> bool:
                _, text, _ = await t.call("GET", "/metrics", expect=200)
                return (
                    text.count("maintwatch_collector_errors_total{") >= 5
                    and "http_probe_failed" in log.read_text()
                )

            await wait_for(all_failed, what=f"every collector failed once; log: {log}")
            for path in ("/", "/metrics", "/-/ready", "/-/healthy"):
                await t.call("GET", path)
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    assert echo.requests, "the probe reached the echo server"
    output = log.read_text(errors="replace")
    assert not leaks(output, secrets), leaks(output, secrets)
    assert not leaks("\n".join(t.texts), secrets), leaks("\n".join(t.texts), secrets)


async def test_chat_error_answers_echoing_the_secret_url_are_redacted() -> None:
    from receiver.delivery.channels.base import DeliveryError
    from receiver.delivery.channels.slack import SlackChannel, SlackConfig
    from tests.receiver._channel_helpers import make_context, make_notification

    async with recording_server(echo_failure) as echo, aiohttp.ClientSession() as http:
        url = f"{echo.url}/services/T0/B0/secret-path-part?token=secret-query-part"
        config = SlackConfig(name="s", type="slack", webhook_url=url)
        with pytest.raises(DeliveryError) as caught:
            await SlackChannel(config, make_context(http)).send(make_notification())
    reason = caught.value.reason
    assert reason.startswith("HTTP 404: no route for POST <webhook url>")
    assert "secret-path-part" not in reason
    assert "secret-query-part" not in reason
