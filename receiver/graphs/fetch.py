"""Per-alert graphs for the incident page: query Prometheus' range API, draw inline SVG.

Bounded on every side: a few graphs per page, one timeout for all of them, answers cached
briefly (the page reloads itself), responses capped in size. Prometheus slow, down or
answering nonsense costs the page one line of text, never an error or a stall.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
from aiohttp import web
from markupsafe import Markup

from maintwatch.httpauth import basic_auth
from receiver.delivery.templates import humanize_duration
from receiver.graphs.curves import Curves
from receiver.graphs.promql import plot, source
from receiver.graphs.settings import GraphsConfig
from receiver.graphs.svg import svg

MAX_BODY = 4 * 1024 * 1024  # bytes of one query_range answer
POINTS = 240  # samples across the window
Series = list[tuple[dict[str, str], list[tuple[float, float]]]]


@dataclass(frozen=True)
class Shown:
    """One alert's graph, or the one line saying why there is none."""

    svg: Markup | None = None
    note: str = ""


class GraphError(Exception):
    """There is no graph to draw; the message says why, in one line for the page."""


def _epoch(moment: str | None) -> float | None:
    return datetime.fromisoformat(moment).timestamp() if moment else None


def _matches(series_labels: Mapping[str, str], alert_labels: Mapping[str, str]) -> bool:
    return all(alert_labels.get(k) == v for k, v in series_labels.items() if k != "__name__")


def pick(series: Series, alert_labels: Mapping[str, str]) -> list[tuple[float, float]]:
    """Return the points of the series that is this alert's (its labels are in the alert's)."""
    return next((points for labels, points in series if _matches(labels, alert_labels)), [])


def parse(body: bytes) -> Series:
    """Return (labels, points) of a query_range answer; raise GraphError on anything else."""
    try:
        answer = json.loads(body)
        if answer.get("status") != "success":
            raise GraphError(f"Prometheus answered {answer.get('error', 'an error')}")
        data = answer["data"]
        if data["resultType"] == "scalar":
            return [({}, [(float(data["result"][0]), float(data["result"][1]))])]
        return [
            (dict(s["metric"]), [(float(t), float(v)) for t, v in s["values"]])
            for s in data["result"]
        ]
    except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
        raise GraphError("Prometheus answered something that is not a query result") from exc


class Graphs:
    """Fetch and draw the graphs of one page of alerts."""

    def __init__(
        self,
        config: GraphsConfig,
        http: aiohttp.ClientSession | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config, self.http, self.clock = config, http, clock
        self._cache: dict[tuple[str, str, float, float], tuple[float, Series]] = {}
        self._gate = asyncio.Semaphore(4)  # concurrent queries, whatever the number of viewers

    async def for_alerts(self, alerts: Sequence[Mapping[str, Any]], now: float) -> list[Shown]:
        """Return one Shown per alert: graphs for the first `per_page`, nothing after."""
        chosen = alerts[: self.config.per_page] if self.config.enabled else []
        shown = await asyncio.gather(*(self._bounded(a, now) for a in chosen))
        return [*shown, *(Shown() for _ in alerts[len(chosen) :])]

    async def _bounded(self, alert: Mapping[str, Any], now: float) -> Shown:
        try:
            return Shown(svg=svg(await self.curves(alert, now)))
        except GraphError as exc:
            return Shown(note=f"No graph: {exc}.")

    async def curves(self, alert: Mapping[str, Any], now: float) -> Curves:
        """Return an alert's curves within the timeout, or raise GraphError saying why not."""
        try:
            async with asyncio.timeout(self.config.timeout):
                return await self._curves(alert, now)
        except TimeoutError:
            seconds = humanize_duration(self.config.timeout)
            raise GraphError(f"Prometheus did not answer within {seconds}") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise GraphError(f"Prometheus cannot be reached ({type(exc).__name__})") from exc

    async def _curves(self, alert: Mapping[str, Any], now: float) -> Curves:
        found = source(str(alert.get("generator_url") or ""))
        if found is None or self.http is None:
            raise GraphError("the alert names no Prometheus expression")
        base = self.config.prometheus_url.rstrip("/") or found.base
        window = self._window(alert, now)
        wanted = plot(found.expr)
        labels = alert.get("labels", {})
        value, threshold = await asyncio.gather(
            self._series(base, wanted.value, window),
            self._series(base, wanted.threshold, window) if wanted.threshold else _none(),
        )
        points = pick(value, labels)
        if not points:
            raise GraphError("Prometheus holds no data for this alert's series")
        start = _epoch(alert.get("starts_at")) or window[0]
        end = _epoch(alert.get("ends_at")) or now
        title = f"{wanted.value} {wanted.operator} {wanted.threshold}".strip()
        return Curves(title, window, points, pick(threshold, labels), (start, end))

    def _window(self, alert: Mapping[str, Any], now: float) -> tuple[float, float]:
        """Return `range` seconds ending now, or a while after the alert ended."""
        span = self.config.range
        ended = _epoch(alert.get("ends_at"))
        end = min(now, ended + span / 4) if ended else now
        return end - span, end

    async def _series(self, base: str, query: str, window: tuple[float, float]) -> Series:
        step = max(1.0, math.ceil((window[1] - window[0]) / POINTS))
        # Buckets of one step: viewers within a step share one answer from the cache.
        key = (base, query, window[0] // step, step)
        cached = self._cache.get(key)
        if cached is not None and self.clock() - cached[0] < self.config.cache:
            return cached[1]
        params = {"query": query, "start": str(window[0]), "end": str(window[1]), "step": str(step)}
        async with self._gate:
            series = parse(await self._get(f"{base}/api/v1/query_range", params))
        if len(self._cache) > 256:
            self._cache.clear()
        self._cache[key] = (self.clock(), series)
        return series

    async def _get(self, url: str, params: Mapping[str, str]) -> bytes:
        assert self.http is not None
        async with self.http.get(url, params=params, headers=self._headers(url)) as response:
            if response.status >= 400 and response.status not in (400, 422):
                raise GraphError(f"Prometheus answered HTTP {response.status}")
            body = bytearray()
            async for chunk in response.content.iter_chunked(65536):
                body += chunk
                if len(body) > MAX_BODY:
                    raise GraphError("Prometheus' answer is too large to draw")
            return bytes(body)

    def _headers(self, url: str) -> dict[str, str]:
        """Return credentials, only for the configured Prometheus (never one an alert names)."""
        config = self.config
        if not config.prometheus_url or not url.startswith(config.prometheus_url.rstrip("/")):
            return {}
        if config.bearer_token_file is not None:
            return {"Authorization": f"Bearer {config.bearer_token_file.get_secret_value()}"}
        if config.username:
            secret = config.password_file.get_secret_value() if config.password_file else ""
            return {"Authorization": basic_auth(config.username, secret)}
        return {}


async def _none() -> Series:
    return []


GRAPHS = web.AppKey("graphs", Graphs)


def graphs_ctx(config: GraphsConfig) -> Callable[[web.Application], AsyncIterator[None]]:
    """Return the cleanup_ctx that owns the graphs' HTTP session."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        timeout = aiohttp.ClientTimeout(total=config.timeout)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            app[GRAPHS] = Graphs(config, http)
            yield

    return ctx
