"""Render notifications with sandboxed jinja2 templates: built-in ones, overridable per channel.

A channel's template is one file of named blocks (`subject`, `text`, `html`, `title`): each block
is rendered on its own. A user override (the channel's `template:` path) defines any subset of
the blocks its channel uses; blocks it leaves out come from the built-in template. A block that
fails at render time falls back to the built-in one and is logged, so the page still goes out.

An override is the operator's code running on every notification, so it is bounded: at most
RENDER_SECONDS of Python per render (checked on every line the template executes), at most
MAX_BLOCK_CHARS of output per block, and no single operation (`*`, `**`, a width or count
argument) that could allocate far more than that at once; past a bound it falls back like any
other failure. Channels render with `render_async`, which runs an override in a worker thread
so a slow template never stalls the event loop (webhook intake, pages, health).
"""

from __future__ import annotations

import asyncio
import functools
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from maintwatch.durations import format_duration
from receiver.delivery.bidi import isolate, isolate_values
from receiver.delivery.messages import AlertView, Notification

BUILTIN_DIR = Path(__file__).with_name("templates")


@dataclass(frozen=True)
class TemplateBlocks:
    """A channel's built-in template file and the blocks it renders (declared by the channel)."""

    file: str
    names: tuple[str, ...]


MESSAGE_ALERTS = 20  # alerts one message lists; the rest are counted ("… and N more")

# Labels every alert has or that the headline already shows; left out of "top labels".
_HIDDEN_LABELS = frozenset({"alertname", "severity"})
_FIRST_LABELS = ("instance", "job", "service", "backup", "database", "queue", "target", "team")
_HEADLINES = {
    "firing": "FIRING",
    "updated": "UPDATED",
    "acknowledged": "ACKNOWLEDGED",
    "unacknowledged": "UNACKNOWLEDGED",
    "resolved": "RESOLVED",
    "digest": "DIGEST",
    "watchdog": "WATCHDOG",
}


RENDER_SECONDS = 2.0
MAX_BLOCK_CHARS = 64 * 1024
MAX_OPERAND = 1_000_000  # largest int a template may pass as a width, count or exponent


class TemplateLimitError(Exception):
    """A template went past one of its bounds (time, output size, one operation's size)."""


def _check_operands(values: Iterable[Any]) -> None:
    for value in values:
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_OPERAND:
            raise TemplateLimitError(f"number {value} is larger than templates may use")


def _bounded_filter(func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def guarded(value: Any, *args: Any, **kwargs: Any) -> Any:
        _check_operands([*args, *kwargs.values()])
        return func(value, *args, **kwargs)

    return guarded


class _BoundedSandbox(ImmutableSandboxedEnvironment):
    """The sandbox, without operations that allocate gigabytes in one step."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(
        self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any
    ) -> Any:
        """Refuse `"x" * 10**9` and `9 ** 10**9` before they run."""
        if operator == "**":
            _check_operands([right])
        else:
            for items, count in ((left, right), (right, left)):
                if isinstance(items, str | list | tuple) and isinstance(count, int):
                    _check_operands([len(items) * count])
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        """Refuse huge widths and counts in method calls (`"x".ljust(10**9)`)."""
        _check_operands([*args, *kwargs.values()])
        return super().call(__context, __obj, *args, **kwargs)


def _make_env(autoescape: bool) -> ImmutableSandboxedEnvironment:
    env = _BoundedSandbox(
        loader=jinja2.FileSystemLoader(BUILTIN_DIR),
        autoescape=autoescape,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters.update(
        humanize_duration=humanize_duration,
        since=_since,
        timestamp=_timestamp,
        fired=fired,
    )
    for name in ("center", "indent", "format", "slice", "batch", "wordwrap", "truncate"):
        env.filters[name] = _bounded_filter(env.filters[name])
    return env


def humanize_duration(seconds: float) -> str:
    """Format seconds as the two largest units, e.g. `2h 5m`, `3d 4h`, `45s`."""
    text = format_duration(max(0.0, float(seconds)))
    if text.endswith("ms"):
        return "0s"
    parts: list[str] = []
    number = ""
    for char in text:
        number += char
        if not char.isdigit():
            parts.append(number)
            number = ""
    return " ".join(parts[:2])


@jinja2.pass_context
def _since(context: jinja2.runtime.Context, moment: datetime | None) -> str:
    """Return how long ago `moment` was, relative to the render clock."""
    if moment is None:
        return ""
    now: datetime = context["now"]
    return humanize_duration((now - moment).total_seconds())


def fired(alert: AlertView) -> str:
    """Return how long a resolved alert fired, e.g. `42m`; empty while it fires."""
    if alert.ends_at is None:
        return ""
    return humanize_duration((alert.ends_at - alert.starts_at).total_seconds())


@jinja2.pass_context
def _timestamp(
    context: jinja2.runtime.Context, moment: datetime | None, fmt: str = "%Y-%m-%d %H:%M %Z"
) -> str:
    """Format `moment` in the recipient's time zone."""
    if moment is None:
        return ""
    zone: tzinfo = context["tz"]
    return moment.astimezone(zone).strftime(fmt)


# Characters that end a link in HTML, Slack mrkdwn (`<url|text>`) or Markdown (`[text](url)`).
_LINK_UNSAFE = re.compile(r"[\x00-\x20\x7f<>\"'`|()\[\]{}\\^]")


def safe_link(url: str) -> str:
    """Return an http(s) URL with markup-breaking characters percent-encoded, else ''."""
    # Runbook and source URLs come from alert annotations: no `javascript:` links, and no
    # breaking out of a chat link to add text, links or @channel mentions of one's own.
    if urlsplit(url.strip()).scheme not in ("http", "https"):
        return ""
    return _LINK_UNSAFE.sub(lambda m: f"%{ord(m.group()):02X}", url.strip())


def absolute_link(url: str, base: str) -> str:
    """Return a safe absolute link: http(s) as is, a relative path resolved against `base`."""
    url = url.strip()
    if not url:
        return ""
    if not urlsplit(url).scheme and not url.startswith("//") and base:
        # `docs/runbooks/X.md` from the rules → served by the receiver at that path.
        url = urljoin(base.rstrip("/") + "/", url.lstrip("/"))
    return safe_link(url)


def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        # A person's time zone is validated where people are configured; render in UTC anyway.
        return UTC


# Two environments: the email HTML block is compiled with autoescape, everything else without
# (SMS and plain text must show `<` as `<`).
_TEXT_ENV = _make_env(autoescape=False)
_HTML_ENV = _make_env(autoescape=True)


def top_labels(notification: Notification, limit: int = 6) -> list[tuple[str, str]]:
    """Return the most telling common labels, well-known ones first."""
    labels = {k: v for k, v in notification.common_labels.items() if k not in _HIDDEN_LABELS}
    ordered = [k for k in _FIRST_LABELS if k in labels]
    ordered += sorted(k for k in labels if k not in _FIRST_LABELS)
    return [(k, labels[k]) for k in ordered[:limit]]


def _first(notification: Notification, key: str, *, label: bool = False) -> str:
    """Return a common annotation/label, else the first alert's value."""
    common = notification.common_labels if label else notification.common_annotations
    if common.get(key):
        return common[key]
    if label and notification.group_labels.get(key):
        return notification.group_labels[key]
    for alert in notification.alerts:
        values = alert.labels if label else alert.annotations
        if values.get(key):
            return values[key]
    return ""


def _shared(notification: Notification, key: str) -> str:
    """Return an annotation every alert shares (each alert's own is shown on its line)."""
    if notification.common_annotations.get(key):
        return notification.common_annotations[key]
    if len(notification.alerts) == 1 and not notification.truncated_alerts:
        return notification.alerts[0].annotations.get(key, "")
    return ""


def headline(notification: Notification) -> str:
    """Return the status wording: `FIRING`, `RESOLVED`, `ACKNOWLEDGED by alice`."""
    word = _HEADLINES.get(notification.kind, notification.kind.upper())
    if notification.kind in ("acknowledged", "resolved") and notification.acted_by:
        return f"{word} by {notification.acted_by}"
    return word


def runbook_link(notification: Notification) -> str:
    """Return the notification's runbook as an absolute http(s) link, or ''."""
    return absolute_link(_first(notification, "runbook_url"), notification.receiver_url)


def _shown_alert(alert: AlertView, n: Notification, now: float) -> AlertView:
    """Return an alert as messages show it: isolated text, absolute links, resolved when over."""
    annotations = isolate_values(alert.annotations)
    if "runbook_url" in annotations:
        annotations["runbook_url"] = absolute_link(alert.annotations["runbook_url"], n.receiver_url)
    shown = replace(
        alert,
        labels=isolate_values(alert.labels),
        annotations=annotations,
        generator_url=safe_link(alert.generator_url),
    )
    if n.incident_status == "resolved" and alert.status == "firing":
        # Resolved by hand: the alert stops counting for this incident when the incident ends.
        shown = replace(shown, status="resolved", ends_at=datetime.fromtimestamp(now, UTC))
    return shown


def _isolated(n: Notification) -> Notification:
    return replace(
        n,
        title=isolate(n.title),
        group_labels=isolate_values(n.group_labels),
        common_labels=isolate_values(n.common_labels),
        common_annotations=isolate_values(n.common_annotations),
    )


def template_context(notification: Notification, now: float) -> dict[str, Any]:
    """Return the variables a template sees for one notification."""
    raw = notification
    n = _isolated(raw)
    # Firing first; a message lists at most MESSAGE_ALERTS (10 000-alert groups exist).
    ordered = sorted(raw.alerts, key=lambda a: a.status != "firing")
    alerts = [_shown_alert(a, raw, now) for a in ordered[:MESSAGE_ALERTS]]
    firing: list[AlertView] = [a for a in alerts if a.status == "firing"]
    firing_count = sum(1 for a in raw.alerts if a.status == "firing")
    if raw.incident_status == "resolved":
        firing_count = 0
    tz = _zone(n.recipient.timezone if n.recipient else "UTC")
    return {
        "n": n,
        "kind": n.kind,
        "headline": headline(n),
        "status": n.incident_status,
        "severity": n.severity,
        "title": n.title,
        "alertname": _first(n, "alertname", label=True),
        "summary": _first(n, "summary"),
        "description": _shared(n, "description"),
        "runbook_url": runbook_link(raw),
        "alerts": alerts,
        "firing": firing,
        "resolved": [a for a in alerts if a.status == "resolved"],
        "count": len(n.alerts) + n.truncated_alerts,
        "firing_count": firing_count,
        "truncated_alerts": n.truncated_alerts + len(raw.alerts) - len(alerts),
        "top_labels": top_labels(n),
        "labels": n.common_labels,
        "group_labels": n.group_labels,
        "annotations": n.common_annotations,
        "incident_id": n.incident_id,
        "incident_url": n.incident_url,
        "ack_url": n.ack_url,
        "resolve_url": n.resolve_url,
        "external_url": n.external_url,
        "reply_code": n.reply_code,
        "acted_by": n.acted_by,
        "recipient": n.recipient,
        "escalation_step": n.escalation_step,
        "now": datetime.fromtimestamp(now, UTC),
        "tz": tz,
    }


@dataclass(frozen=True)
class _Compiled:
    text: jinja2.Template
    html: jinja2.Template


def _compile(source: str) -> _Compiled:
    return _Compiled(text=_TEXT_ENV.from_string(source), html=_HTML_ENV.from_string(source))


def _builtin(blocks: TemplateBlocks) -> _Compiled:
    return _Compiled(_TEXT_ENV.get_template(blocks.file), _HTML_ENV.get_template(blocks.file))


def check_template(path: str, blocks: TemplateBlocks, kind: str) -> None:
    """Raise ValueError unless `path` is a readable template defining one of `blocks`."""
    try:
        source = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read template {path!r}: {exc.strerror}") from None
    try:
        template = _TEXT_ENV.from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise ValueError(f"template {path!r} line {exc.lineno}: {exc.message}") from None
    wanted = blocks.names
    if not set(template.blocks) & set(wanted):
        names = ", ".join(wanted)
        raise ValueError(f"template {path!r} defines none of the blocks {kind} uses ({names})")


def _render_block(template: jinja2.Template, block: str, variables: Mapping[str, Any]) -> str:
    context = template.new_context(dict(variables))
    return "".join(template.blocks[block](context)).strip()


def _render_bounded(template: jinja2.Template, block: str, variables: Mapping[str, Any]) -> str:
    """Render an operator's block within RENDER_SECONDS and MAX_BLOCK_CHARS."""
    deadline = time.monotonic() + RENDER_SECONDS

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        # Runs on each line of Python this thread executes while the template renders: a
        # template loop is compiled Python, so an endless or huge loop hits the deadline.
        if time.monotonic() > deadline:
            raise TemplateLimitError(f"rendering took longer than {RENDER_SECONDS:g}s")
        return tracer

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        parts, size = [], 0
        for chunk in template.blocks[block](template.new_context(dict(variables))):
            size += len(chunk)
            if size > MAX_BLOCK_CHARS:
                raise TemplateLimitError(f"output longer than {MAX_BLOCK_CHARS} characters")
            parts.append(chunk)
        return "".join(parts).strip()
    finally:
        sys.settrace(previous)


class Renderer:
    """Render one channel's blocks, preferring the user's override and falling back safely."""

    def __init__(
        self, blocks: TemplateBlocks, override: str | None, logger: Any, channel: str = ""
    ) -> None:
        self.blocks = blocks
        self.override_path = override
        self.logger = logger
        self.channel = channel
        self._builtin = _builtin(blocks)
        self._override: _Compiled | None = None
        if override is not None:
            self._override = _compile(Path(override).read_text(encoding="utf-8"))

    def render(self, notification: Notification, now: float) -> dict[str, str]:
        """Return every block of this channel rendered for `notification`."""
        variables = template_context(notification, now)
        return {block: self._render(block, variables) for block in self.blocks.names}

    async def render_async(self, notification: Notification, now: float) -> dict[str, str]:
        """Render as `render` does; an operator's template runs in a worker thread."""
        if self._override is None:
            return self.render(notification, now)
        return await asyncio.to_thread(self.render, notification, now)

    def _render(self, block: str, variables: Mapping[str, Any]) -> str:
        pick: Callable[[_Compiled], jinja2.Template] = (
            (lambda c: c.html) if block == "html" else (lambda c: c.text)
        )
        override = self._override
        if override is not None and block in pick(override).blocks:
            try:
                return _render_bounded(pick(override), block, variables)
            except Exception as exc:  # user template code: whatever it raises, fall back
                self.logger.warning(
                    "template_render_failed",
                    channel=self.channel,
                    template=self.override_path,
                    block=block,
                    error=f"{type(exc).__name__}: {exc}",
                )
        return _render_block(pick(self._builtin), block, variables)
