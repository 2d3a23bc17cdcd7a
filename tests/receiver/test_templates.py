"""Templates: built-in wording, escaping, user overrides, fallback on errors and the sandbox."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from pydantic import ValidationError

from receiver.delivery.channels import REGISTRY
from receiver.delivery.channels.base import Notification
from receiver.delivery.channels.console import ConsoleConfig
from receiver.delivery.channels.email import EmailConfig
from receiver.delivery.templates import Renderer, humanize_duration
from tests.receiver._channel_helpers import (
    HOSTILE,
    NOW,
    RecordingLogger,
    blocks,
    make_alert,
    make_notification,
    make_recipient,
)


def hostile_notification(count: int = 2) -> Notification:
    """Return a notification whose labels and annotations carry HTML and non-ASCII text."""
    return make_notification(
        count,
        common_labels={"alertname": "BackupTooOld", "severity": "critical", "team": HOSTILE},
        common_annotations={"summary": f"Summary {HOSTILE}", "description": "Ünïcødé detail"},
    )


@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_every_builtin_renders_every_block(kind: str) -> None:
    parts = Renderer(blocks(kind), None, RecordingLogger()).render(make_notification(3), NOW)
    assert set(parts) == set(blocks(kind).names)
    assert all(parts.values()), parts
    assert "BackupTooOld" in " ".join(parts.values())


def test_email_text_shows_wording_count_labels_and_links() -> None:
    parts = Renderer(blocks("email"), None, RecordingLogger()).render(hostile_notification(), NOW)
    text = parts["text"]
    assert text.startswith("FIRING: BackupTooOld (critical), 2 alerts")
    assert f"Summary {HOSTILE}" in text  # plain text is not escaped
    assert f"team: {HOSTILE}" in text
    assert "started 2026-11-22 12:00 UTC (2h ago)" in text
    assert "Runbook: https://runbooks.example/BackupTooOld" in text
    assert "Acknowledge: https://pager.example/ack/tok12" in text
    assert "source: http://prometheus:9090/graph?g0.expr=up" in text
    assert parts["subject"] == "[FIRING:2] BackupTooOld (ops)"


def test_email_html_escapes_labels_and_annotations() -> None:
    html = Renderer(blocks("email"), None, RecordingLogger()).render(hostile_notification(), NOW)[
        "html"
    ]
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; Ünïcødé ✓" in html
    assert '<a href="https://pager.example/ack/tok12">Acknowledge</a>' in html


def test_sms_and_plain_text_are_not_escaped() -> None:
    n = hostile_notification(1)
    n = replace(n, common_annotations={**n.common_annotations, "description": f"Value {HOSTILE}"})
    sms = Renderer(blocks("sms"), None, RecordingLogger()).render(n, NOW)["text"]
    console = Renderer(blocks("console"), None, RecordingLogger()).render(n, NOW)["text"]
    # The value (description) is what an SMS carries; the generic summary is left out.
    assert sms == f"CRITICAL BackupTooOld: Value {HOSTILE}"
    assert f"team={HOSTILE}" in console


@pytest.mark.parametrize(
    ("kind", "acted_by", "expected"),
    [
        ("resolved", "", "RESOLVED: BackupTooOld"),
        ("acknowledged", "alice", "ACKNOWLEDGED by alice: BackupTooOld"),
        ("updated", "", "UPDATED: BackupTooOld"),
    ],
)
def test_chat_title_wording_follows_the_kind(kind: str, acted_by: str, expected: str) -> None:
    n = make_notification(1, kind=kind, acted_by=acted_by)
    assert Renderer(blocks("slack"), None, RecordingLogger()).render(n, NOW)["title"] == expected


def test_resolved_alerts_show_when_they_ended() -> None:
    ended = make_alert(0, status="resolved", ends_at=make_alert().starts_at.replace(hour=13))
    n = make_notification(1, kind="resolved", alerts=(ended,))
    text = Renderer(blocks("email"), None, RecordingLogger()).render(n, NOW)["text"]
    assert "- [resolved] Backup db0 is 30h old" in text
    assert "ended 2026-11-22 13:00 UTC" in text


def test_timestamps_use_the_recipients_time_zone() -> None:
    n = make_notification(1, recipient=make_recipient(timezone="Europe/Berlin"))
    text = Renderer(blocks("email"), None, RecordingLogger()).render(n, NOW)["text"]
    assert "started 2026-11-22 13:00 CET" in text


def test_truncated_alerts_are_counted() -> None:
    n = make_notification(2, truncated_alerts=5)
    text = Renderer(blocks("email"), None, RecordingLogger()).render(n, NOW)["text"]
    assert "7 alerts" in text
    assert "… and 5 more" in text


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(0.2, "0s"), (45, "45s"), (3725, "1h 2m"), (93784, "1d 2h"), (-5, "0s")],
)
def test_humanize_duration(seconds: float, expected: str) -> None:
    assert humanize_duration(seconds) == expected


def write(tmp_path: Path, text: str) -> str:
    """Write a template file and return its path."""
    path = tmp_path / "override.j2"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_override_replaces_only_the_blocks_it_defines(tmp_path: Path) -> None:
    path = write(
        tmp_path, "{% block subject %}PAGE {{ alertname }} #{{ incident_id }}{% endblock %}"
    )
    parts = Renderer(blocks("email"), path, RecordingLogger()).render(make_notification(), NOW)
    assert parts["subject"] == "PAGE BackupTooOld #12"
    assert parts["text"].startswith("FIRING: BackupTooOld")  # built-in


def test_override_html_block_is_autoescaped(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "{% block html %}<b>{{ labels.team }}</b>{% endblock %}"
        "{% block text %}{{ labels.team }}{% endblock %}",
    )
    n = hostile_notification()
    parts = Renderer(blocks("email"), path, RecordingLogger()).render(n, NOW)
    assert parts["html"] == "<b>&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; Ünïcødé ✓</b>"
    assert parts["text"] == HOSTILE


def test_filters_work_in_overrides(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "{% block text %}{% for a in alerts %}{{ a.starts_at|since }} "
        "{{ a.starts_at|timestamp('%H:%M') }} {{ 90|humanize_duration }}{% endfor %}{% endblock %}",
    )
    parts = Renderer(blocks("console"), path, RecordingLogger()).render(make_notification(), NOW)
    assert parts["text"] == "2h 12:00 1m 30s"


def test_render_error_falls_back_to_builtin_and_is_logged(tmp_path: Path) -> None:
    path = write(tmp_path, "{% block text %}{{ alerts[0].labels.nope.deeper }}{% endblock %}")
    logger = RecordingLogger()
    parts = Renderer(blocks("console"), path, logger, channel="ops-console").render(
        make_notification(), NOW
    )
    assert parts["text"].startswith("[FIRING] critical BackupTooOld")
    (event,) = logger.events
    assert event["event"] == "template_render_failed"
    assert event["channel"] == "ops-console"
    assert event["block"] == "text"
    assert event["template"] == path
    assert "UndefinedError" in event["error"]


@pytest.mark.parametrize(
    "expression",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ n.__init__.__globals__ }}",
        "{{ alerts.append(1) }}",  # immutable sandbox: no mutating the context
        "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    ],
)
def test_sandbox_blocks_escapes(tmp_path: Path, expression: str) -> None:
    path = write(tmp_path, "{% block text %}X" + expression + "{% endblock %}")
    logger = RecordingLogger()
    text = Renderer(blocks("console"), path, logger).render(make_notification(), NOW)["text"]
    assert "class" not in text
    assert "uid=" not in text
    assert text.startswith("[FIRING]")  # the built-in went out instead
    assert logger.events[0]["event"] == "template_render_failed"


def test_unsafe_attribute_alone_renders_nothing(tmp_path: Path) -> None:
    path = write(tmp_path, "{% block text %}[{{ ''.__class__ }}]{% endblock %}")
    text = Renderer(blocks("console"), path, RecordingLogger()).render(make_notification(), NOW)[
        "text"
    ]
    assert text == "[]"


def test_config_rejects_missing_template(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="cannot read template"):
        ConsoleConfig(name="c", type="console", template=str(tmp_path / "missing.j2"))


def test_config_rejects_template_that_does_not_compile(tmp_path: Path) -> None:
    path = write(tmp_path, "line one\n{% block text %}{{ oops( }}{% endblock %}")
    with pytest.raises(ValidationError, match=r"override\.j2' line 2"):
        ConsoleConfig(name="c", type="console", template=path)


def test_config_rejects_template_without_a_known_block(tmp_path: Path) -> None:
    path = write(tmp_path, "{% block subjet %}typo{% endblock %}")
    with pytest.raises(ValidationError, match=r"defines none of the blocks email uses"):
        EmailConfig.model_validate(
            {"name": "m", "type": "email", "host": "h", "from": "a@b.c", "template": path}
        )


def test_config_accepts_a_good_template(tmp_path: Path) -> None:
    path = write(tmp_path, "{% block text %}{{ title }}{% endblock %}")
    assert ConsoleConfig(name="c", type="console", template=path).template == path


def test_watchdog_and_digest_kinds_render() -> None:
    for kind in ("watchdog", "digest", "unacknowledged"):
        n = replace(make_notification(1), kind=kind)
        text = Renderer(blocks("console"), None, RecordingLogger()).render(n, NOW)["text"]
        assert text.startswith(f"[{kind.upper()}]")
