"""Pick routes for an incident's labels: ordered, first match wins unless `continue` (pure).

An `audit` route never counts as handling an incident: matching it neither stops routing nor
keeps `default_route` from applying. `gaps` finds label sets that would page nobody.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from receiver.config import RouteConfig, RouteTarget
from receiver.routing.matchers import Matcher, parse_matcher

DEFAULT_ROUTE_NAME = "default"


@dataclass(frozen=True)
class Route:
    """A compiled route."""

    name: str
    matchers: tuple[Matcher, ...]
    channels: tuple[str, ...]
    people: tuple[str, ...]
    policy: str | None
    continue_: bool
    audit: bool = False

    def pages(self, archives: frozenset[str] = frozenset()) -> bool:
        """Return whether matching this route notifies anyone: not an audit route, and a
        person, a policy or a channel other than the `archives` (file channels)."""
        return not self.audit and bool(self.people or self.policy or set(self.channels) - archives)

    def failing(self, labels: Mapping[str, str]) -> list[Matcher]:
        """Return the matchers the labels do not satisfy (empty: the route matches)."""
        return [m for m in self.matchers if not m.matches(labels)]


@dataclass(frozen=True)
class Decision:
    """Which routes matched, and the channels/people/policy that follow from them."""

    routes: tuple[str, ...]
    channels: tuple[str, ...]
    people: tuple[str, ...]
    policy: str | None
    pages_nobody: bool = False  # only audit routes (or routes naming nobody) matched


def compile_routes(routes: Sequence[RouteConfig], default: RouteTarget) -> tuple[Route, ...]:
    """Compile configured routes; the default route goes last and matches everything."""
    out = [
        Route(
            name=r.name or f"routes[{i}]",
            matchers=tuple(parse_matcher(m) for m in r.matchers),
            channels=tuple(r.channels),
            people=tuple(r.people),
            policy=r.policy,
            continue_=r.continue_,
            audit=r.audit,
        )
        for i, r in enumerate(routes)
    ]
    out.append(
        Route(
            DEFAULT_ROUTE_NAME,
            (),
            tuple(default.channels),
            tuple(default.people),
            default.policy,
            False,
        )
    )
    return tuple(out)


def _unique(items: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def route(
    routes: Sequence[Route], labels: Mapping[str, str], archives: frozenset[str] = frozenset()
) -> Decision:
    """Return the routing decision; the default route applies only when no route other than
    audit routes matched."""
    matched: list[Route] = []
    handled = False
    for candidate in routes:
        if _is_default(routes, candidate) and handled:
            break
        if not candidate.failing(labels):
            matched.append(candidate)
            if candidate.audit:
                continue  # archives only: the incident still needs a route that handles it
            handled = True
            if not candidate.continue_:
                break
    policy = next((r.policy for r in matched if r.policy), None)
    return Decision(
        routes=tuple(r.name for r in matched),
        channels=_unique([c for r in matched for c in r.channels]),
        people=_unique([p for r in matched for p in r.people]),
        policy=policy,
        pages_nobody=not any(r.pages(archives) for r in matched),
    )


def _is_default(routes: Sequence[Route], candidate: Route) -> bool:
    return candidate.name == DEFAULT_ROUTE_NAME and candidate is routes[-1]


def gaps(
    routes: Sequence[Route], severity_label: str, archives: frozenset[str] = frozenset()
) -> list[dict[str, str]]:
    """Return label sets of paging incidents that no route pages anyone for.

    Probed: no labels at all, each paging severity alone, and for each route the labels its
    equality matchers name (with and without each severity); info never pages by design.
    """
    probes: list[dict[str, str]] = [{}]
    for candidate in routes:
        named = {m.name: m.value for m in candidate.matchers if m.op == "="}
        if named:
            probes.append(named)
    with_severity = [
        {**probe, severity_label: tier} for probe in probes for tier in ("critical", "warning")
    ]
    out: list[dict[str, str]] = []
    for labels in probes + with_severity:
        if labels.get(severity_label) == "info" or labels in out:
            continue
        if route(routes, labels, archives).pages_nobody:
            out.append(labels)
    return out


def explain(
    routes: Sequence[Route], labels: Mapping[str, str], archives: frozenset[str] = frozenset()
) -> list[str]:
    """Return one line per route saying whether it matched and why (for the CLI)."""
    decision = route(routes, labels, archives)
    lines = []
    for candidate in routes:
        failing = candidate.failing(labels)
        shown = ", ".join(str(m) for m in candidate.matchers) or "(matches everything)"
        if candidate.name in decision.routes:
            verdict = "MATCH" + _why(routes, candidate)
        elif failing:
            verdict = "no match: " + ", ".join(f"{m} is false" for m in failing)
        elif _is_default(routes, candidate):
            verdict = "skipped: a route other than an audit route matched"
        else:
            verdict = "skipped: an earlier route matched without continue"
        lines.append(f"{candidate.name}: {shown} -> {verdict}")
    lines.append(
        f"=> channels: {', '.join(decision.channels) or '(none)'}; "
        f"people: {', '.join(decision.people) or '(none)'}; policy: {decision.policy or '(none)'}"
    )
    if decision.pages_nobody:
        lines.append(
            "=> pages nobody: only audit routes, file channels or routes naming nobody matched"
        )
    return lines


def _why(routes: Sequence[Route], candidate: Route) -> str:
    if candidate.audit:
        return " (audit: routing goes on; does not count as handled)"
    if _is_default(routes, candidate):
        return " (no other route handled the incident)"
    return " (continue)" if candidate.continue_ else ""
