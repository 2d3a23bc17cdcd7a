"""schemathesis against the real receiver process, driven by docs/openapi.yaml.

For every documented operation, valid and invalid requests, with and without credentials:
no 5xx, answers match the document (status, content type, JSON schema), and a rejected
request (4xx) leaves the store exactly as it was.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
import yaml
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.receiver._helpers import alert, payload
from tests.receiver._process_helpers import Receiver

pytestmark = pytest.mark.e2e
SPEC = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"
SCHEMA = schemathesis.openapi.from_path(SPEC)
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]  # type: ignore[union-attr]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
TOKEN = "s3cr3t"
RAW = yaml.safe_load(SPEC.read_text())


def _variants() -> list[Any]:
    """Return (operation, mode, authorized) to run: negative data only where there are inputs,
    unauthenticated requests only where the operation asks for credentials."""
    out = []
    for op in OPERATIONS:
        raw = RAW["paths"][op.path][op.method.lower()]
        modes = [GenerationMode.POSITIVE]
        if raw.get("parameters") or raw.get("requestBody"):
            modes.append(GenerationMode.NEGATIVE)
        auths = [True, False] if raw.get("security") else [True]
        out += [
            pytest.param(op, mode, auth, id=f"{op.label}-{mode.value}-{'auth' if auth else 'anon'}")
            for mode in modes
            for auth in auths
        ]
    return out


TABLES = ("alert_groups", "incidents", "incident_alerts", "outbox", "incident_events")


def config_text(folder: Path) -> str:
    """Return a config with webhook and API auth, the inbound chat/SMS webhooks, one person
    and one schedule, no channels."""
    (folder / "token").write_text(f"{TOKEN}\n")
    for name in ("twilio", "slack", "links"):
        (folder / name).write_text(f"{name}-secret-for-schemathesis\n")
    return (
        "external_url: https://pager.example.org\n"
        f"links: {{secret_file: {folder / 'links'}}}\n"
        f"inbound: {{twilio: {{auth_token_file: {folder / 'twilio'}}},"
        f" slack: {{signing_secret_file: {folder / 'slack'}}}}}\n"
        f"store: {{type: sqlite, path: {folder / 'r.db'}}}\n"
        f"webhook: {{auth: bearer, token_file: {folder / 'token'}, max_body_bytes: 100000}}\n"
        f"api: {{token_file: {folder / 'token'}}}\n"
        "people: [{id: alice, name: Alice}]\n"
        "schedules: [{name: primary, timezone: Europe/Berlin, layers: [{rotation: 7d,"
        " start: 2026-01-05, participants: [alice]}]}]\n"
        "retention: {enabled: false}\n"
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """Run one receiver for the module, with an open and a resolved incident in its store."""
    folder = tmp_path_factory.mktemp("openapi")
    config = folder / "receiver.yml"
    config.write_text(config_text(folder))
    rx = Receiver(config, _port(), folder / "receiver.log")
    rx.start()
    try:
        _ready(rx.url)
        auth = {"Authorization": f"Bearer {TOKEN}"}
        for body in (
            payload(alert("a"), group="open"),
            payload(alert("b"), group="done"),
            payload(alert("b", status="resolved", ends="2026-11-22T13:00:00Z"), group="done"),
        ):
            response = requests.post(
                f"{rx.url}/webhooks/alertmanager", json=body, headers=auth, timeout=30
            )
            assert response.status_code == 200, response.text
        yield rx.url, folder / "r.db"
    finally:
        assert rx.stop() == 0


def _port() -> int:
    from tests.conftest import free_port

    return free_port()


def _ready(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/-/ready", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.05)
    raise AssertionError("receiver did not become ready")


def snapshot(db: Path) -> dict[str, list[Any]]:
    """Return every row of the stateful tables (read-only, from outside the receiver)."""
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)) as conn:
        out = {}
        for table in TABLES:
            sql = f"SELECT * FROM {table} ORDER BY 1"  # noqa: S608 - fixed table names
            out[table] = conn.execute(sql).fetchall()
        return out


def test_document_is_served_and_matches_the_file(server: tuple[str, Path]) -> None:
    url, _ = server
    response = requests.get(f"{url}/api/openapi.yaml", timeout=10)
    assert response.status_code == 200
    assert yaml.safe_load(response.text) == yaml.safe_load(SPEC.read_text())


def test_every_route_is_documented(server: tuple[str, Path]) -> None:
    documented = {op.path for op in OPERATIONS}
    assert {
        "/webhooks/alertmanager",
        "/webhooks/twilio/sms",
        "/webhooks/slack",
        "/webhooks/mattermost",
        "/api/v1/incidents",
        "/api/v1/incidents/{id}",
        "/api/v1/incidents/{id}/ack",
        "/api/v1/incidents/{id}/unack",
        "/api/v1/incidents/{id}/resolve",
        "/api/v1/oncall",
        "/api/v1/schedules/{name}.ics",
        "/-/healthy",
        "/-/ready",
        "/metrics",
    } <= documented


@pytest.mark.parametrize(("operation", "mode", "authorized"), _variants())
def test_operation_holds_up(
    server: tuple[str, Path], operation: Any, mode: GenerationMode, authorized: bool
) -> None:
    url, db = server
    headers = {"Authorization": f"Bearer {TOKEN}"} if authorized else {}

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=25,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def run(case: Any) -> None:
        before = snapshot(db)
        if not authorized:
            case.headers = {k: v for k, v in (case.headers or {}).items() if k != "Authorization"}
        response = case.call(base_url=url, headers=headers, timeout=30)
        case.validate_response(response, checks=CHECKS)
        if response.status_code >= 400:
            assert snapshot(db) == before, f"{response.status_code} changed the store"

    run()
