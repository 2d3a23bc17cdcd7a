"""Pick routes for an incident's labels: ordered, first match wins unless `continue` (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from receiver.config import RouteConfig, RouteTarget
from receiver.matchers import Matcher, parse_matcher

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


def route(routes: Sequence[Route], labels: Mapping[str, str]) -> Decision:
    """Return the routing decision; the default route applies only when nothing else matched."""
    matched: list[Route] = []
    for candidate in routes:
        if candidate.name == DEFAULT_ROUTE_NAME and candidate is routes[-1] and matched:
            break
        if not candidate.failing(labels):
            matched.append(candidate)
            if not candidate.continue_:
                break
    policy = next((r.policy for r in matched if r.policy), None)
    return Decision(
        routes=tuple(r.name for r in matched),
        channels=_unique([c for r in matched for c in r.channels]),
        people=_unique([p for r in matched for p in r.people]),
        policy=policy,
    )


def explain(routes: Sequence[Route], labels: Mapping[str, str]) -> list[str]:
    """Return one line per route saying whether it matched and why (for the CLI)."""
    decision = route(routes, labels)
    lines = []
    for candidate in routes:
        failing = candidate.failing(labels)
        shown = ", ".join(str(m) for m in candidate.matchers) or "(matches everything)"
        if candidate.name in decision.routes:
            verdict = "MATCH" + (" (continue)" if candidate.continue_ else "")
        elif failing:
            verdict = "no match: " + ", ".join(f"{m} is false" for m in failing)
        else:
            verdict = "skipped: an earlier route matched without continue"
        lines.append(f"{candidate.name}: {shown} -> {verdict}")
    lines.append(
        f"=> channels: {', '.join(decision.channels) or '(none)'}; "
        f"people: {', '.join(decision.people) or '(none)'}; policy: {decision.policy or '(none)'}"
    )
    return lines
