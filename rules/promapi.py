"""A small synchronous client for Prometheus' HTTP API, used by `backtest` and `lint`.

Credentials follow the project's secret-file convention: the password or bearer token is read
from a file named on the command line, never passed as an argument where `ps` would show it.
"""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from maintwatch.durations import parse_duration
from maintwatch.httpauth import basic_auth

TIMEOUT = 120.0


class PrometheusError(Exception):
    """Prometheus could not be reached, refused the request, or answered something unusable."""


@dataclass(frozen=True)
class Series:
    """One series of a range or instant result: its labels and its (time, value) points."""

    labels: dict[str, str]
    points: list[tuple[float, float]]


@dataclass
class Prometheus:
    """A Prometheus server: base URL, an optional `Authorization` header, and a query count."""

    url: str
    authorization: str | None = None
    timeout: float = TIMEOUT
    queries: int = field(default=0, init=False)

    def get(self, path: str, params: Mapping[str, str | list[str]]) -> Any:
        """GET `path` with query parameters; return the `data` member of the answer."""
        query = urllib.parse.urlencode(params, doseq=True)
        url = f"{self.url.rstrip('/')}{path}?{query}"
        request = urllib.request.Request(url, headers=self._headers())  # noqa: S310 - http(s) only, checked in from_args
        self.queries += 1
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:  # noqa: S310
                body = answer.read()
        except urllib.error.HTTPError as exc:
            raise PrometheusError(f"{self.url}{path}: {_api_error(exc)}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise PrometheusError(f"{self.url}: unreachable ({reason})") from None
        return _data(body, f"{self.url}{path}")

    def _headers(self) -> dict[str, str]:
        return {"Authorization": self.authorization} if self.authorization else {}

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[Series]:
        """Evaluate `expr` at start, start+step, … end; return the series with their points."""
        params = {"query": expr, "start": _ts(start), "end": _ts(end), "step": _ts(step)}
        data = self.get("/api/v1/query_range", params)
        return [_series(item, "values") for item in data["result"]]

    def query(self, expr: str, at: float | None = None) -> list[Series]:
        """Evaluate `expr` at one instant (now by default); range vectors keep every point."""
        params = {"query": expr} | ({"time": _ts(at)} if at is not None else {})
        data = self.get("/api/v1/query", params)
        if data["resultType"] == "matrix":
            return [_series(item, "values") for item in data["result"]]
        if data["resultType"] == "vector":
            return [
                _series({**item, "values": [item["value"]]}, "values") for item in data["result"]
            ]
        return []

    def series(self, selector: str, start: float, end: float) -> list[dict[str, str]]:
        """Return the label sets of the series `selector` matches between start and end."""
        params = {"match[]": selector, "start": _ts(start), "end": _ts(end)}
        result: list[dict[str, str]] = self.get("/api/v1/series", params)
        return result

    def metric_names(self) -> list[str]:
        """Return every metric name Prometheus holds."""
        names: list[str] = self.get("/api/v1/label/__name__/values", {})
        return names

    def config(self) -> dict[str, Any]:
        """Return Prometheus' loaded configuration (YAML parsed)."""
        loaded: dict[str, Any] = yaml.safe_load(self.get("/api/v1/status/config", {})["yaml"])
        return loaded


def intervals(config: Mapping[str, Any]) -> tuple[float, float]:
    """Return (evaluation interval, longest scrape interval) of a Prometheus config, in seconds.

    Unset values take Prometheus' default, one minute.
    """
    glob = config.get("global") or {}
    evaluation = parse_duration(str(glob.get("evaluation_interval", "1m")))
    scrape = parse_duration(str(glob.get("scrape_interval", "1m")))
    for job in config.get("scrape_configs") or []:
        scrape = max(scrape, parse_duration(str(job.get("scrape_interval", "0s"))))
    return evaluation, scrape


def flag_duration(text: str, flag: str) -> float:
    """Parse a duration given on the command line; ValueError naming the flag."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise ValueError(f"{flag}: {exc}") from None


def _ts(value: float) -> str:
    return f"{value:.3f}"


def _series(item: dict[str, Any], key: str) -> Series:
    points = [(float(t), float(v)) for t, v in item.get(key, [])]
    return Series(labels=dict(item["metric"]), points=points)


def _data(body: bytes, where: str) -> Any:
    try:
        doc = json.loads(body)
    except ValueError:
        raise PrometheusError(f"{where}: the answer is not Prometheus' JSON") from None
    if not isinstance(doc, dict) or doc.get("status") != "success" or "data" not in doc:
        error = doc.get("error", "no data member") if isinstance(doc, dict) else "not an object"
        raise PrometheusError(f"{where}: {error}")
    return doc["data"]


def _api_error(exc: urllib.error.HTTPError) -> str:
    if exc.code in (401, 403):
        return f"HTTP {exc.code}: check the --prometheus.* credential flags"
    try:
        doc = json.loads(exc.read())
        return f"HTTP {exc.code}: {doc['error']}"
    except (ValueError, KeyError, TypeError):
        return f"HTTP {exc.code} {exc.reason}"


def add_prometheus_flags(parser: argparse.ArgumentParser) -> None:
    """Add --prometheus.url and the credential flags to a subcommand."""
    parser.add_argument(
        "--prometheus.url",
        "--prometheus",
        dest="prometheus_url",
        required=True,
        help="base URL of Prometheus, e.g. http://127.0.0.1:9090",
    )
    parser.add_argument("--prometheus.username", dest="prometheus_username", default=None)
    parser.add_argument(
        "--prometheus.password-file",
        dest="prometheus_password_file",
        type=Path,
        default=None,
        help="file holding the basic-auth password",
    )
    parser.add_argument(
        "--prometheus.bearer-token-file",
        dest="prometheus_bearer_token_file",
        type=Path,
        default=None,
        help="file holding a bearer token (e.g. for a proxy in front of Prometheus)",
    )
    parser.add_argument(
        "--prometheus.timeout", dest="prometheus_timeout", type=float, default=TIMEOUT
    )


def from_args(args: argparse.Namespace) -> Prometheus:
    """Build the client from the flags; raise PrometheusError naming a bad flag or file."""
    url: str = args.prometheus_url
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise PrometheusError(f"--prometheus.url: expected http(s)://host:port, got {url!r}")
    user, password_file = args.prometheus_username, args.prometheus_password_file
    token_file = args.prometheus_bearer_token_file
    if token_file is not None and (user or password_file):
        raise PrometheusError("--prometheus.bearer-token-file: use it or basic auth, not both")
    if (user is None) != (password_file is None):
        raise PrometheusError("--prometheus.username and --prometheus.password-file go together")
    authorization = None
    if token_file is not None:
        authorization = "Bearer " + _secret(token_file, "--prometheus.bearer-token-file")
    elif user is not None and password_file is not None:
        authorization = basic_auth(user, _secret(password_file, "--prometheus.password-file"))
    return Prometheus(url=url, authorization=authorization, timeout=args.prometheus_timeout)


def _secret(path: Path, flag: str) -> str:
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise PrometheusError(f"{flag}: {path}: {exc.strerror}") from None
    if not value:
        raise PrometheusError(f"{flag}: {path}: the file is empty")
    return value
