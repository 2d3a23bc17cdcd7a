"""User override templates run sandboxed; alert data is never compiled as a template."""

from __future__ import annotations

from pathlib import Path

import pytest

from receiver.delivery.templates import Renderer
from tests.receiver._channel_helpers import NOW, RecordingLogger, blocks, make_notification

# Ways out of a jinja2 sandbox seen in the wild (SSTI payloads); each must yield nothing useful.
ESCAPES = [
    "{{ self._TemplateReference__context }}",
    "{{ self._TemplateReference__context.cycler.__init__.__globals__.os }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ joiner.__init__.__globals__.os.environ }}",
    "{{ namespace.__init__.__globals__.os.environ }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ range.__self__.__import__('os').popen('id').read() }}",
    "{{ n|attr('__class__')|attr('__init__')|attr('__globals__') }}",
    "{{ '{0.__class__.__init__.__globals__}'.format(n) }}",
    "{{ '%s'|format(n.__class__.__mro__) }}",
    "{{ tz.__class__.__init__.__globals__ }}",
    "{{ now.__class__.__subclasses__() }}",
    "{{ n.recipient.__dict__ }}",
    "{{ n.__reduce_ex__(2) }}",
    "{{ alerts[0].labels.__class__.__base__.__subclasses__() }}",
    "{{ request.application.__globals__ }}",
    "{{ config.items() }}",
    "{% for c in ().__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
]
LEAKS = ("<class", "<function", "<module", "<built-in", "__builtins__", "environ", "uid=", "PATH")


def override(tmp_path: Path, body: str) -> str:
    """Write a console override template whose text block is `body`."""
    path = tmp_path / "override.j2"
    path.write_text("{% block text %}OVERRIDE " + body + "{% endblock %}", encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("expression", ESCAPES)
def test_escape_attempts_yield_nothing(tmp_path: Path, expression: str) -> None:
    logger = RecordingLogger()
    text = Renderer(blocks("console"), override(tmp_path, expression), logger).render(
        make_notification(), NOW
    )["text"]
    assert not [leak for leak in LEAKS if leak in text], text
    if not text.startswith("[FIRING]"):  # either the built-in went out, or nothing was printed
        assert text.strip() == "OVERRIDE", text
    else:
        assert logger.events[0]["event"] == "template_render_failed"


@pytest.mark.parametrize(
    "statement",
    [
        "{% set _ = alerts.append(1) %}",
        "{% set _ = labels.update({'team': 'pwned'}) %}",
        "{% set _ = n.common_labels.clear() %}",
        "{% set _ = n.alerts[0].labels.__setitem__('team', 'pwned') %}",
    ],
)
def test_templates_cannot_change_what_other_channels_see(tmp_path: Path, statement: str) -> None:
    notification = make_notification()
    Renderer(blocks("console"), override(tmp_path, statement), RecordingLogger()).render(
        notification, NOW
    )
    assert notification.common_labels["team"] == "ops"
    assert len(notification.alerts) == 1
    assert notification.alerts[0].labels["team"] == "ops"


def test_huge_ranges_are_refused(tmp_path: Path) -> None:
    logger = RecordingLogger()
    body = "{% for i in range(10**9) %}x{% endfor %}"
    text = Renderer(blocks("console"), override(tmp_path, body), logger).render(
        make_notification(), NOW
    )
    assert text["text"].startswith("[FIRING]")
    assert "larger than templates may use" in logger.events[0]["error"]  # before the sandbox


@pytest.mark.parametrize("kind", ["email", "console", "slack", "sms", "webhook"])
def test_alert_data_is_never_evaluated_as_a_template(kind: str) -> None:
    """Labels and annotations are values, never template source (no SSTI through an alert)."""
    ssti = "{{ 7*7 }}{% for x in range(3) %}Z{% endfor %}{{ cycler.__init__.__globals__ }}"
    n = make_notification(
        common_labels={"alertname": ssti, "severity": "critical", "team": ssti},
        common_annotations={"summary": ssti, "description": ssti},
    )
    parts = Renderer(blocks(kind), None, RecordingLogger()).render(n, NOW)
    joined = " ".join(parts.values())
    assert "49" not in joined
    assert "ZZZ" not in joined
    assert "7*7" in joined
