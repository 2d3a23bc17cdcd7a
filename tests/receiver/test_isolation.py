"""Hostile input and broken neighbours: each failure stays in its own room.

A store down at start, a read-only store, NUL characters only PostgreSQL refuses: each is
met with the same clear answer on both stores and the rest of the receiver keeps working.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from structlog.testing import capture_logs

from receiver.appkeys import PENDING, STORE, WORKER
from receiver.cli import main
from receiver.delivery.channels import REGISTRY
from receiver.delivery.templates import Renderer
from tests.conftest import free_port
from tests.exporter._fault_helpers import fault_proxy
from tests.receiver._ack_helpers import API_TOKEN, PASSWORD, ack_config, serve
from tests.receiver._channel_helpers import (
    NOW,
    RecordingLogger,
    blocks,
    make_context,
    make_notification,
    recording_server,
    status,
)
from tests.receiver._helpers import (
    T0,
    FakeClock,
    alert,
    answers_200,
    payload,
    register_script,
    running,
    store_dsn,
    store_yaml,
    wait_for,
)
from tests.receiver._process_helpers import Receiver, query, receiver_process
from tests.receiver.test_faults import immutable

HOOK = "webhook: {auth: none}\n"


def _with_nul(field: str) -> dict[str, object]:
    body = payload(alert("a"))
    first = body["alerts"][0]
    if field == "groupKey":
        body["groupKey"] = 'grp\x00{alertname="x"}'
    elif field == "labels":
        first["labels"] = {**first["labels"], "job": "a\x00b"}
    else:
        first[field] = "ab\x00cd"
    return body


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_nul_characters_get_400_naming_the_field_on_both_stores(
    kind: str, tmp_path: Path, unique: str
) -> None:
    # PostgreSQL refuses U+0000 in text (a 500, retried by Alertmanager forever); SQLite took
    # it. Both now answer 400 naming the field, and store nothing.
    async with (
        store_dsn(kind, unique) as dsn,
        running(store_yaml(kind, tmp_path, dsn) + HOOK) as rx,
    ):
        for field, where in [
            ("groupKey", "groupKey"),
            ("fingerprint", "alerts[0].fingerprint"),
            ("generatorURL", "alerts[0].generatorURL"),
            ("labels", "alerts[0].labels.job"),
        ]:
            body = json.dumps(_with_nul(field)).encode()
            async with rx.http.post(f"{rx.url}/webhooks/alertmanager", data=body) as answer:
                text = await answer.text()
            assert answer.status == 400, (field, text)
            assert f"{where}: NUL character" in text
        assert await rx.app[STORE].incidents(None, {}, 10) == []
        assert (await rx.post(payload(alert("a")))).status == 200


async def test_postgres_down_at_start_serves_503_then_recovers(tmp_path: Path, unique: str) -> None:
    # Started while PostgreSQL is unreachable, the receiver used to exit with a traceback (and
    # stay down under supervisord's FATAL). It now starts, answers 503 and reconnects.
    async with store_dsn("postgres", unique) as dsn, fault_proxy(("127.0.0.1", 5432)) as proxy:
        await proxy.set("down")
        proxied = dsn.replace("port=5432", f"port={proxy.port}")
        config = tmp_path / "receiver.yml"
        config.write_text(store_yaml("postgres", tmp_path, proxied) + HOOK)
        async with (
            receiver_process(config, tmp_path / "rx.log") as rx,
            aiohttp.ClientSession() as http,
        ):
            await wait_for(answers_200(http, f"{rx.url}/-/healthy"), what="receiver listening")
            async with http.get(f"{rx.url}/-/ready") as response:
                assert response.status == 503
                assert "postgres" in await response.text()
            body = json.dumps(payload(alert("a"))).encode()
            async with http.post(f"{rx.url}/webhooks/alertmanager", data=body) as response:
                assert response.status == 503  # Alertmanager retries
            assert rx.process is not None
            assert rx.process.poll() is None

            await proxy.set("pass")
            await wait_for(answers_200(http, f"{rx.url}/-/ready"), timeout=60, what="ready")
            async with http.post(f"{rx.url}/webhooks/alertmanager", data=body) as response:
                assert response.status == 200
            assert rx.stop() == 0
        log = (tmp_path / "rx.log").read_text()
        assert "store_unavailable_at_start" in log
        assert "Traceback" not in log


async def test_read_only_sqlite_store_is_not_ready(tmp_path: Path) -> None:
    folder = tmp_path / "store"
    folder.mkdir()
    db = folder / "r.db"
    async with running(f"store: {{type: sqlite, path: {db}}}\n" + HOOK) as rx:
        assert (await rx.post(payload(alert("a")))).status == 200
        with immutable(folder, db, folder / "r.db-wal"):
            async with rx.http.get(f"{rx.url}/-/ready") as response:
                assert response.status == 503
                assert "sqlite" in await response.text()
        async with rx.http.get(f"{rx.url}/-/ready") as response:
            assert response.status == 200


MENTIONS = "<!channel> <!here> <@U024BE7LH> <https://evil.example|Reset your password>"


async def test_chat_text_cannot_mention_or_link(tmp_path: Path) -> None:
    # The alert name is whatever a webhook sender chose. In Slack's top-level `text` (the
    # preview, parsed as mrkdwn) it used to notify the channel and show a fake link; in a Teams
    # card a Markdown link rendered as one.
    labels = {"alertname": f"{MENTIONS} [Reset](https://evil.example)", "severity": "critical"}
    notification = make_notification(common_labels=labels)
    async with aiohttp.ClientSession() as http, recording_server(status(202)) as server:
        for kind in ("slack", "teams"):
            data = {"name": kind, "type": kind, "webhook_url": f"{server.url}/{kind}"}
            cls = REGISTRY[kind]
            await cls(cls.config_type.model_validate(data), make_context(http)).send(notification)
    slack, teams = (r.json() for r in server.requests)
    assert "<" not in slack["text"]
    assert "&lt;!channel&gt;" in slack["text"]
    title = teams["attachments"][0]["content"]["body"][0]["text"]
    assert "[Reset](" not in title
    assert "\\[Reset\\](https://evil.example)" in title


async def test_webhook_header_secrets_never_reach_logs_or_the_api(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An endpoint that echoes the request in its error page (proxies do) used to put the
    # configured `Authorization` header in `notification_retry` lines and the API's log.
    token = "hook-token-" + "7f3a9c" * 4
    monkeypatch.setenv("HOOK_TOKEN", token)

    async def echo(request: web.Request) -> web.Response:
        return web.Response(status=502, text=f"bad gateway: {dict(request.headers)}")

    (tmp_path / "api").write_text("apitoken\n")
    async with recording_server(echo) as endpoint:
        text = (
            store_yaml("sqlite", tmp_path, "")
            + HOOK
            + f"api: {{token_file: {tmp_path / 'api'}}}\n"
            + "channels:\n"
            + f"  - {{name: hook, type: webhook, url: '{endpoint.url}/in',\n"
            + "     headers: {Authorization: 'Bearer ${HOOK_TOKEN}', X-Key: '${HOOK_TOKEN}'}}\n"
            + "default_route: {channels: [hook]}\n"
        )
        async with running(text) as rx:
            assert (await rx.post(payload(alert("a")))).status == 200
            with capture_logs() as logs:
                await rx.app[WORKER].run_once()
            auth = {"Authorization": "Bearer apitoken"}
            async with rx.http.get(f"{rx.url}/api/v1/incidents/1", headers=auth) as response:
                shown = await response.text()
    assert endpoint.requests[0].headers["Authorization"] == f"Bearer {token}"
    (retry,) = [e for e in logs if e["event"] == "notification_retry"]
    assert "HTTP 502: bad gateway" in retry["reason"]
    assert "<redacted>" in retry["reason"]
    assert token not in json.dumps(logs)
    assert "<redacted>" in shown
    assert token not in shown


async def _login(
    url: str, name: str, password: str, source: str = "127.0.0.1"
) -> tuple[int, str, str]:
    """POST /login from a loopback source address; return (status, Retry-After, page)."""
    connector = aiohttp.TCPConnector(local_addr=(source, 0))
    async with (
        aiohttp.ClientSession(connector=connector) as http,
        http.post(
            f"{url}/login",
            data={"name": name, "password": password, "next": "/"},
            allow_redirects=False,
        ) as response,
    ):
        cookie = response.headers.get("Set-Cookie", "").split(";", 1)[0]
        async with http.get(f"{url}/", headers={"Cookie": cookie}) as landing:
            shown = await landing.text() if cookie else ""
        return response.status, response.headers.get("Retry-After", ""), shown


async def test_logins_are_throttled_per_client_and_in_total(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # 3 000 wrong passwords went through in 0.9 s. Now a client past `per_client` failures, or
    # everyone past `total`, is refused (429) until the window ends, even with the password.
    register_script(monkeypatch)
    text = ack_config(tmp_path, store_yaml("sqlite", tmp_path, ""), "http://127.0.0.1").replace(
        "api_token_login: true", "login_throttle: {per_client: 3, total: 5, window: 5m}"
    )
    clock = FakeClock(T0)
    async with serve(text, clock) as rx:
        for _ in range(3):
            assert (await _login(rx.url, "alice", "wrong"))[0] == 401
        status, retry_after, _ = await _login(rx.url, "alice", PASSWORD)
        assert (status, retry_after) == (429, "300")
        assert (await _login(rx.url, "alice", PASSWORD, "127.0.0.2"))[0] == 303  # other client
        for _ in range(2):
            assert (await _login(rx.url, "alice", "wrong", "127.0.0.2"))[0] == 401
        # Five failures in the window from anywhere: a third address is refused too.
        assert (await _login(rx.url, "alice", PASSWORD, "127.0.0.3"))[0] == 429
        clock.advance(301)
        assert (await _login(rx.url, "alice", PASSWORD))[0] == 303


async def test_the_api_token_logs_in_only_when_enabled_and_never_as_someone_else(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    register_script(monkeypatch)
    enabled = ack_config(tmp_path, store_yaml("sqlite", tmp_path, ""), "http://127.0.0.1")
    async with serve(enabled, FakeClock(T0)) as rx:
        status, _, shown = await _login(rx.url, "alice", API_TOKEN)
        assert status == 303
        assert "logged in as api-token" in shown  # not as alice, whatever name was typed
        assert "logged in as alice" not in shown
    off = enabled.replace(",\n      api_token_login: true", "")
    assert "api_token_login" not in off
    async with serve(off, FakeClock(T0)) as rx:
        assert (await _login(rx.url, "alice", API_TOKEN))[0] == 401  # off unless configured


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        # Loops that never end in practice: 10^10 iterations, no output.
        (
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            "longer than 2s",
        ),
        ("{% for i in range(100000) %}0123456789{% endfor %}", "output longer than"),
        ("{{ 'x' * 1000000000 }}", "larger than templates may use"),
        ("{{ 9 ** 99999999 }}", "larger than templates may use"),
        ("{{ 'x'|center(1000000000) }}", "larger than templates may use"),
        ("{{ 'x'.ljust(1000000000) }}", "larger than templates may use"),
    ],
)
def test_operator_templates_are_bounded_in_time_and_size(
    tmp_path: Path, body: str, reason: str
) -> None:
    template = tmp_path / "t.j2"
    template.write_text("{% block text %}" + body + "{% endblock %}")
    logger = RecordingLogger()
    text = Renderer(blocks("console"), str(template), logger).render(make_notification(), NOW)[
        "text"
    ]
    assert text.startswith("[FIRING]")  # the built-in block went out instead
    (failed,) = logger.events
    assert failed["event"] == "template_render_failed"
    assert reason in failed["error"]


async def test_a_slow_operator_template_renders_off_the_event_loop(tmp_path: Path) -> None:
    # Rendered on the loop, a template busy until its deadline stalled webhooks and health
    # checks. The health check now answers while the page is still being rendered.
    template = tmp_path / "slow.j2"
    template.write_text(
        "{% block text %}{% for i in range(100000) %}{% for j in range(100000) %}"
        "{% endfor %}{% endfor %}{% endblock %}"
    )
    pages = tmp_path / "pages.log"
    text = (
        store_yaml("sqlite", tmp_path, "")
        + HOOK
        + f"channels: [{{name: f, type: file, path: {pages}, template: {template}}}]\n"
        + "default_route: {channels: [f]}\n"
    )
    async with running(text, run_worker=True) as rx:
        assert (await rx.post(payload(alert("a")))).status == 200
        db = tmp_path / "receiver.db"
        sending = "SELECT id FROM outbox WHERE status = 'sending'"
        await wait_for(lambda: query(db, sending), what="the page being rendered")
        async with rx.http.get(f"{rx.url}/-/healthy") as response:
            assert response.status == 200
        assert (await rx.post(payload(alert("b"), group="other"))).status == 200
        assert not pages.exists()  # the first page is still rendering
        await wait_for(pages.exists, what="the page sent with the built-in text")


def test_a_config_without_webhook_auth_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Webhooks used to be accepted from anyone unless the config said otherwise.
    config = tmp_path / "receiver.yml"
    config.write_text(store_yaml("sqlite", tmp_path, ""))
    assert main(["--config.file", str(config), "--check-config"]) == 1
    assert f"{config}: webhook.auth: not set" in capsys.readouterr().err
    config.write_text(store_yaml("sqlite", tmp_path, "") + HOOK)
    assert main(["--config.file", str(config), "--check-config"]) == 0


async def test_auth_none_spelled_out_is_warned_about_at_start(tmp_path: Path) -> None:
    config = tmp_path / "receiver.yml"
    config.write_text(store_yaml("sqlite", tmp_path, "") + HOOK)
    async with (
        receiver_process(config, tmp_path / "rx.log") as rx,
        aiohttp.ClientSession() as http,
    ):
        await rx.ready(http)
        assert rx.stop() == 0
    log = (tmp_path / "rx.log").read_text()
    assert "webhook_unauthenticated" in log


async def _trickle(host: str, port: int, stop: asyncio.Event, closed: list[int]) -> None:
    """Hold one connection open by sending a header byte now and then; reconnect when cut."""
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            await asyncio.sleep(0.2)
            continue
        try:
            writer.write(b"POST /webhooks/alertmanager HTTP/1.1\r\nHost: x\r\n")
            while not stop.is_set():
                writer.write(b"X")
                await writer.drain()
                try:
                    async with asyncio.timeout(0.3):
                        if not await reader.read(1024):
                            break  # the server closed it
                except TimeoutError:
                    continue
            closed[0] += 1
        except OSError:
            closed[0] += 1
        finally:
            writer.close()


async def _deliver_like_alertmanager(http: aiohttp.ClientSession, url: str, body: bytes) -> int:
    """POST with retries on errors and 5xx, as Alertmanager does; return the tries needed."""
    for attempt in range(1, 200):
        try:
            async with http.post(url, data=body, timeout=aiohttp.ClientTimeout(total=3)) as r:
                if r.status == 200:
                    return attempt
        except (aiohttp.ClientError, TimeoutError):
            pass
        await asyncio.sleep(0.2)
    raise AssertionError("webhook never accepted")


async def test_trickling_connections_cannot_starve_webhooks(tmp_path: Path) -> None:
    # 1 100 trickling connections at the fd limit made real webhooks time out and asyncio log
    # 109 044 tracebacks in 30 s. Here the process gets 128 descriptors and 150 tricklers
    # that reconnect whenever they are cut off.
    config = tmp_path / "receiver.yml"
    config.write_text(
        store_yaml("sqlite", tmp_path, "")
        + HOOK
        + "server: {header_timeout: 1s, request_timeout: 5s}\n"
    )
    log = tmp_path / "rx.log"
    rx = Receiver(config, free_port(), log)
    rx.start(nofile=128)
    stop, closed = asyncio.Event(), [0]
    try:
        async with aiohttp.ClientSession() as http:
            await rx.ready(http)
            tricklers = [
                asyncio.create_task(_trickle("127.0.0.1", rx.port, stop, closed))
                for _ in range(150)
            ]
            await asyncio.sleep(2)  # they take every slot they can
            url = f"{rx.url}/webhooks/alertmanager"
            for name in ("a", "b", "c"):
                body = json.dumps(payload(alert(name), group=name)).encode()
                await _deliver_like_alertmanager(http, url, body)
            stop.set()
            await asyncio.gather(*tricklers)
            assert closed[0] > 0  # slow connections were cut off
            assert rx.stop() == 0
    finally:
        stop.set()
        if rx.process is not None and rx.process.poll() is None:
            rx.kill()
    text = log.read_text()
    assert "Traceback" not in text
    assert "connections_limited" in text
    assert len(text) < 200_000


async def test_bodies_still_arriving_count_towards_max_pending(tmp_path: Path) -> None:
    # `max_pending` used to count only bodies already read: 150 clients each holding a 4 MB
    # body half sent took RSS from 323 MB to 1 GB.
    text = store_yaml("sqlite", tmp_path, "") + "webhook: {auth: none, max_pending: 2}\n"
    async with running(text) as rx:
        port = int(rx.url.rsplit(":", 1)[1])
        writers = []
        for _ in range(2):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                b"POST /webhooks/alertmanager HTTP/1.1\r\nHost: x\r\n"
                b'Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"version"'
            )
            await writer.drain()
            writers.append(writer)
        await wait_for(lambda: rx.app[PENDING][0] == 2, what="two bodies being read")
        assert (await rx.post(payload(alert("a")))).status == 503
        for writer in writers:
            writer.close()
        await wait_for(lambda: rx.app[PENDING][0] == 0, what="the cut bodies released")
        assert (await rx.post(payload(alert("a")))).status == 200
