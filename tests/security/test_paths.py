"""Path traversal: request data never chooses a file; config paths are the operator's own.

Decision: every path in the configuration (`*_file` secrets, `template`, the file channel's
`path`, `ca_file`, the SQLite store) is trusted as written by the operator, absolute or relative
to the working directory, and read at start-up. Nothing a request carries (labels, annotations,
URL paths, form fields) is ever joined into a path: there is no static-file route, templates are
looked up by configured path or in the built-in directory only.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp import web
from yarl import URL

from maintwatch.configload import ConfigError
from receiver.app import make_app
from receiver.appkeys import WORKER
from receiver.config import load_config_text
from receiver.delivery.templates import Renderer
from tests.receiver._ack_helpers import recording_logger
from tests.receiver._channel_helpers import NOW, RecordingLogger, blocks, make_notification
from tests.receiver._helpers import alert, payload, register_script, wait_for
from tests.security._security_helpers import WEBHOOK_TOKEN, served, sweep_config

PASSWD = "root:x:0:0"
TRAVERSALS = ["../../../../etc/passwd", "/etc/passwd", "..\\..\\etc\\passwd", "%2e%2e/etc/passwd"]


def test_no_route_serves_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    register_script(monkeypatch)
    app = make_app(load_config_text(sweep_config(tmp_path, "http://x")), recording_logger())
    kinds = {type(r.resource) for r in app.router.routes()}
    assert kinds <= {web.PlainResource, web.DynamicResource}, kinds  # no StaticResource


async def test_traversal_in_url_paths_reads_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    async with served(monkeypatch, tmp_path) as rx:
        token = {"Authorization": "Bearer api-token-for-tests"}
        for attack in TRAVERSALS:
            for prefix in ("/api/v1/schedules/", "/incidents/", "/ack/", "/api/openapi.yaml/", "/"):
                raw = (
                    prefix + attack.replace("/", "%2F") + (".ics" if "schedules" in prefix else "")
                )
                for url in (URL(rx.url + raw, encoded=True), URL(rx.url + prefix + attack)):
                    async with rx.http.get(url, headers=token, allow_redirects=False) as response:
                        assert PASSWD not in await response.text(), url
                        assert response.status in (303, 400, 403, 404), (url, response.status)


async def test_labels_cannot_choose_where_the_file_channel_writes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    target = tmp_path / "chosen-by-attacker"
    outbox = tmp_path / "out.jsonl"
    async with served(monkeypatch, tmp_path, file_channel=outbox) as rx:
        hostile = {"path": str(target), "file": "../chosen-by-attacker", "template": str(target)}
        body = payload(alert("p1", **hostile))
        body["commonLabels"].update(hostile)
        assert (await rx.post(body, token=WEBHOOK_TOKEN)).status == 200

        async def written() -> bool:
            await rx.app[WORKER].run_once()
            return outbox.exists() and outbox.stat().st_size > 0

        await wait_for(written, what="the file channel's line")
    assert not target.exists()
    assert str(target) in outbox.read_text()  # the label is data in the configured file


@pytest.mark.parametrize(
    "body",
    [
        "{% include '../../../../../../etc/passwd' %}",
        "{% include '/etc/passwd' %}",
        "{% include labels.template %}",
        "{% from labels.template import x %}{{ x }}",
        "{% import labels.template as x %}",
    ],
)
def test_override_templates_cannot_include_files_outside_the_builtins(
    tmp_path: Path, body: str
) -> None:
    path = tmp_path / "override.j2"
    path.write_text("{% block text %}" + body + "{% endblock %}", encoding="utf-8")
    n = make_notification(
        common_labels={"alertname": "X", "severity": "critical", "template": "../../../etc/passwd"}
    )
    logger = RecordingLogger()
    text = Renderer(blocks("console"), str(path), logger).render(n, NOW)["text"]
    assert PASSWD not in text
    assert text.startswith("[FIRING]")  # the built-in went out instead
    assert logger.events[0]["event"] == "template_render_failed"


def test_config_problems_name_secret_files_but_never_their_content(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("top-secret-value\n")
    text = f"""
webhook: {{auth: bearer, token_file: {secret}, max_pending: 0}}
api: {{token_file: {tmp_path / "missing"}}}
channels: [{{name: c, type: console, template: {secret}}}]
"""
    with pytest.raises(ConfigError) as caught:
        load_config_text(text, "rx.yml")
    problems = "\n".join(caught.value.problems)
    assert "top-secret-value" not in problems
    assert f"api.token_file: cannot read secret file '{tmp_path / 'missing'}'" in problems
    assert "webhook.max_pending" in problems
    assert f"template {str(secret)!r} defines none of the blocks" in problems
