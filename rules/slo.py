"""Recording rules for error ratios and multi-window multi-burn-rate SLO alerts (pure)."""

from __future__ import annotations

from typing import Any

from maintwatch.durations import format_duration, parse_duration
from rules.model import BurnAlert, Objective, RequestsSettings, SLOSettings
from rules.render import number, percent, with_selector

HTTP_ERROR_RATIO = "job:http_requests:error_ratio_rate5m"
# Responses counted from access logs by the exporter's `apps` collector, by status class.
LOG_RESPONSES = "maintwatch_http_responses_total"
SUMMARIES = {
    "ErrorBudgetBurnFast": "An endpoint burns its availability error budget fast enough to page.",
    "ErrorBudgetBurnSlow": "An endpoint burns its availability error budget faster than it lasts.",
}


def probe_record(window: str) -> str:
    """Return the name of the probe error-ratio recording rule over `window`."""
    return f"instance:probe_errors:ratio_rate{window}"


def http_error_ratio(requests: RequestsSettings) -> dict[str, Any]:
    """Record the per-job share of requests that failed, guarded against zero traffic.

    The app's own request counter wins; an app without one (most write only request logs)
    gets the ratio of the responses the exporter counted in its access logs, with the `apps`
    instance name as `job`: name the instance like the app's scrape job and the two never
    both count.
    """
    rate = f"sum by (job) (rate({requests.metric}{{@sel@}}[5m]))"
    errors = with_selector(rate, requests.error_matcher)
    total = with_selector(rate, "")
    own = f"{errors} / ({total} > 0)"
    by_app = f'label_replace(rate({LOG_RESPONSES}{{@sel@}}[5m]), "job", "$1", "app", "(.+)")'
    log_errors = with_selector(f"sum by (job) ({by_app})", 'code="5xx"')
    log_total = with_selector(f"sum by (job) ({by_app})", "")
    logs = f"{log_errors} / ({log_total} > 0)"
    return {"record": HTTP_ERROR_RATIO, "expr": f"({own}) or ({logs})"}


def windows(slo: SLOSettings) -> list[str]:
    """Return every window a burn condition uses, shortest first."""
    names = {w.long for a in (slo.page, slo.ticket) for w in a.windows}
    names |= {w.short for a in (slo.page, slo.ticket) for w in a.windows}
    return sorted(names, key=parse_duration)


def probe_records(slo: SLOSettings) -> list[dict[str, Any]]:
    """Record the share of failed probes over each window."""
    return [
        {"record": probe_record(w), "expr": f"1 - avg_over_time({slo.sli_metric}[{w}])"}
        for w in windows(slo)
    ]


def _burn_expr(burn: BurnAlert, objective: Objective) -> str:
    budget = f"(1 - {number(objective.objective)})"
    parts = []
    for w in burn.windows:
        factor = number(w.factor)
        long = with_selector(f"{probe_record(w.long)}{{@sel@}}", objective.selector)
        short = with_selector(f"{probe_record(w.short)}{{@sel@}}", objective.selector)
        parts.append(f"({long} > ({factor} * {budget}) and {short} > ({factor} * {budget}))")
    return " or ".join(parts)


def burn_alert(name: str, burn: BurnAlert, objective: Objective, base_url: str) -> dict[str, Any]:
    """Render one burn-rate alert for one objective."""
    pairs = ", ".join(f"{number(w.factor)}x over {w.long} and {w.short}" for w in burn.windows)
    rule: dict[str, Any] = {"alert": name, "expr": _burn_expr(burn, objective)}
    if burn.for_:
        rule["for"] = format_duration(burn.for_)
    if burn.keep_firing_for:
        rule["keep_firing_for"] = format_duration(burn.keep_firing_for)
    rule["labels"] = {"severity": burn.severity, "slo_objective": objective.name}
    rule["annotations"] = {
        "summary": SUMMARIES[name],
        "description": (
            "{{ $labels.instance }} failed {{ $value | humanizePercentage }} of its probes"
            f" over the long window; its {percent(objective.objective)} availability objective"
            f" allows {percent(1 - objective.objective)} (burn condition: {pairs})."
        ),
        "runbook_url": f"{base_url.rstrip('/')}/{name}.md",
    }
    return rule


def slo_rules(slo: SLOSettings, base_url: str) -> list[dict[str, Any]]:
    """Return the SLO group's rules: probe error ratios, then burn alerts per objective."""
    rules = probe_records(slo)
    for name, burn in (("ErrorBudgetBurnFast", slo.page), ("ErrorBudgetBurnSlow", slo.ticket)):
        rules += [burn_alert(name, burn, o, base_url) for o in slo.objectives]
    return rules
