"""HTML, script and markup in labels and annotations stay text on every surface that shows them.

One receiver with every channel type delivers two hostile incidents through real local
servers (SMTP, chat webhooks, a fake Twilio, a file); then every page, message and error page
is checked.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from receiver.appkeys import WORKER
from tests.conftest import free_port
from tests.receiver._ack_helpers import serve
from tests.receiver._channel_helpers import RecordingServer, recording_server
from tests.receiver._helpers import Running, alert, payload, store_yaml, wait_for
from tests.receiver._process_helpers import fake_twilio, file_lines
from tests.security._security_helpers import HOSTILE, login_cookie
from tests.security._session_helpers import Mailbox, full_config, make_secrets, smtp_server

BREAKOUT = (
    "https://runbooks.example/a|Click> <!channel> <https://evil.example) [pwn](https://evil.example"
)
SCRIPT_URL = "javascript:alert(document.cookie)"
NO_SLASH = "<img src=x onerror=alert(2)>\"'"


def hostile_incident(fp: str, runbook: str, source: str) -> dict[str, Any]:
    """Return a webhook body whose labels and annotations carry markup."""
    item = alert(fp, alertname=HOSTILE, evil=HOSTILE)
    item["annotations"] = {"summary": HOSTILE, "description": HOSTILE, "runbook_url": runbook}
    item["generatorURL"] = source
    body = payload(item, group=f'{{}}:{{fp="{fp}"}}', alertname=HOSTILE, evil=HOSTILE)
    body["commonAnnotations"] = item["annotations"]
    return body


@dataclass
class World:
    """The served receiver and everything its channels delivered to."""

    rx: Running
    chat: RecordingServer
    mailbox: Mailbox
    file: Path
    secrets: dict[str, str]

    def chat_bodies(self, secret: str) -> list[Any]:
        """Return the JSON bodies POSTed to one secret webhook URL."""
        path = self.secrets[secret].removeprefix(self.chat.url)
        return [r.json() for r in self.chat.requests if r.path == path]


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    """Deliver two hostile incidents through every channel type."""
    port = free_port()
    async with recording_server() as chat, fake_twilio() as twilio:
        secrets = make_secrets(tmp_path, chat.url, chat.url)
        mailbox = Mailbox(secrets["smtp_password"])
        with smtp_server(mailbox) as smtp:
            store = store_yaml("sqlite", tmp_path, "")
            text = full_config(
                tmp_path, store, f"http://127.0.0.1:{port}", smtp, chat.url, twilio.url
            )
            async with serve(text, port=port) as rx:
                for fp, runbook, source in (
                    ("e1", SCRIPT_URL, SCRIPT_URL),
                    ("e2", BREAKOUT, BREAKOUT),
                ):
                    body = hostile_incident(fp, runbook, source)
                    response = await rx.post(body, token=secrets["webhook_token"])
                    assert response.status == 200
                found = World(rx, chat, mailbox, tmp_path / "pages.jsonl", secrets)
                await deliver(found)
                yield found


async def deliver(world: World) -> None:
    """Run the outbox worker until every channel delivered both incidents."""

    async def done() -> bool:
        await world.rx.app[WORKER].run_once()
        bodies = [world.chat_bodies(s) for s in ("slack_url", "teams_url", "mattermost_url")]
        return (
            all(len(b) == 2 for b in bodies)
            and len(world.mailbox.messages) == 2
            and len(file_lines(world.file)) == 2
        )

    await wait_for(done, what="deliveries on every channel")


def strings(node: Any) -> Iterator[str]:
    """Yield every string in a JSON document."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)


def assert_inert_html(text: str, where: str) -> None:
    """Fail unless HTML carries the hostile text only escaped, and links only to http(s)."""
    assert "<script" not in text, where
    assert "<img" not in text, where
    assert "javascript:" not in text, where
    for href in re.findall(r'href="([^"]*)"', text):
        assert href.startswith(("http://", "https://", "/")), (where, href)


async def test_email_html_escapes_and_drops_script_links(world: World) -> None:
    for message in world.mailbox.messages:
        html = message.get_body(("html",))
        assert html is not None
        content = html.get_content()
        assert_inert_html(content, "email html")
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in content
        assert "evil.example)" not in content  # the breakout URL stays one encoded link
    subjects = [str(m["Subject"]) for m in world.mailbox.messages]
    assert all("\n" not in s and "\r" not in s for s in subjects)


async def test_slack_mrkdwn_is_escaped_and_links_cannot_break_out(world: World) -> None:
    for body in world.chat_bodies("slack_url"):
        whole = json.dumps(body)
        assert "javascript:" not in whole
        mrkdwn = [
            e["text"]
            for block in body["attachments"][0]["blocks"]
            for e in [block.get("text") or {}, *block.get("fields", []), *block.get("elements", [])]
            if isinstance(e, dict) and e.get("type") == "mrkdwn"
        ]
        for text in mrkdwn:
            assert "<script" not in text
            assert "<!channel>" not in text
            # Every `<...>` left is one of our links: an http(s) URL, then `|Name`.
            for inner in re.findall(r"<([^>]*)>", text):
                url, _, name = inner.partition("|")
                assert url.startswith("http"), inner
                assert "|" not in name, inner
                assert " " not in url, inner


async def test_teams_and_mattermost_carry_text_and_only_http_links(world: World) -> None:
    for card in world.chat_bodies("teams_url"):
        content = card["attachments"][0]["content"]
        assert "javascript:" not in json.dumps(card)
        assert all(a["url"].startswith("http") for a in content["actions"])
        assert any(HOSTILE in b.get("text", "") for b in content["body"])  # shown as text
    for message in world.chat_bodies("mattermost_url"):
        text = message["attachments"][0]["text"]
        assert "javascript:" not in json.dumps(message)
        links = re.findall(r"\]\(([^)]*)\)", text.split("\n\n")[-1])
        assert links, text
        assert all(u.startswith("http") and "evil.example" not in u.split("/")[2] for u in links)


async def test_json_payloads_keep_labels_as_exact_data(world: World) -> None:
    hooks = [r.json() for r in world.chat.requests if r.path == "/hook"]
    for document in [*hooks, *file_lines(world.file)]:
        assert document["common_labels"]["evil"] == HOSTILE
        assert document["alerts"][0]["annotations"]["summary"] == HOSTILE
        assert all(u.startswith("http") for u in document["links"].values())


async def test_pages_escape_everything(world: World) -> None:
    rx = world.rx
    cookie = await login_cookie(rx, world.secrets["web_password"])
    ack = file_lines(world.file)[0]["links"]["ack"].removeprefix(rx.config.external_url)
    pages = {
        "incidents": ("/", cookie, 200),
        "incident 1": ("/incidents/1", cookie, 200),
        "incident 2": ("/incidents/2", cookie, 200),
        "confirm": (ack, "", 200),
        # No `/` in the id, or the router answers its own plain-text 404 first.
        "not found": ("/incidents/" + quote(NO_SLASH, safe=""), cookie, 404),
        "login next": ("/login?next=" + quote("/" + HOSTILE, safe=""), "", 200),
    }
    for name, (path, session, status) in pages.items():
        headers = {"Cookie": session} if session else {}
        async with rx.http.get(rx.url + path, headers=headers, allow_redirects=False) as response:
            text = await response.text()
            assert response.status == status, (name, text)
            assert "default-src 'none'" in response.headers.get("Content-Security-Policy", ""), name
        assert_inert_html(text, name)
        assert "&lt;script&gt;" in text or "&lt;img" in text or name == "login next", name
        if name == "login next":
            assert 'value="/&lt;script&gt;' in text or 'value="/"' in text


async def test_non_html_answers_are_not_html(world: World) -> None:
    rx = world.rx
    token = world.secrets["api_token"]
    async with rx.http.get(
        f"{rx.url}/api/v1/incidents/1", headers={"Authorization": f"Bearer {token}"}
    ) as response:
        assert response.content_type == "application/json"
        assert (await response.json())["common_labels"]["evil"] == HOSTILE
    async with rx.http.get(rx.url + "/" + quote(HOSTILE, safe="")) as response:
        assert (response.status, response.content_type) == (404, "text/plain")
    bad = json.dumps({"version": "4", "groupKey": HOSTILE}).encode()
    async with rx.http.post(
        f"{rx.url}/webhooks/alertmanager",
        data=bad,
        headers={"Authorization": f"Bearer {world.secrets['webhook_token']}"},
    ) as response:
        assert (response.status, response.content_type) == (400, "text/plain")
