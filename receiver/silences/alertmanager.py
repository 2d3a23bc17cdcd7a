"""Alertmanager's API v2, the few calls the silencer makes (aiohttp).

Every failure (refused, timed out, a non-2xx answer, a body that is not the JSON expected)
becomes `AlertmanagerError` with a one-line reason naming the call, so the silencer can log
one line per outage and retry on its next pass.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from maintwatch.httpauth import basic_auth
from receiver.silences.plan import AlertmanagerConfig

MAX_ERROR_BODY = 200  # characters of an error answer worth putting in a log line


class AlertmanagerError(Exception):
    """A call to Alertmanager failed; the message says which and why.

    `rejected` is true for a 4xx answer: Alertmanager refused this request (a label name it
    does not accept, say), which no retry changes, unlike a refused connection or a 5xx.
    """

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.rejected = 400 <= status < 500


class AlertmanagerAPI:
    """Silences and active alerts of one Alertmanager (or an HA pair behind one URL)."""

    def __init__(self, http: aiohttp.ClientSession, config: AlertmanagerConfig) -> None:
        assert config.url is not None
        self._http = http
        self._base = str(config.url).rstrip("/") + "/api/v2"
        self._timeout = aiohttp.ClientTimeout(total=config.timeout)
        password = config.basic_password()
        self._headers: dict[str, str] = {}
        # What an error page that echoes the request could repeat; cut from every reason.
        self._secrets: list[str] = []
        if config.username is not None and password is not None:
            header = basic_auth(config.username, password.get_secret_value())
            self._headers["Authorization"] = header
            self._secrets = [password.get_secret_value(), header.split(" ", 1)[1]]

    async def silences(self) -> list[dict[str, Any]]:
        """Return every silence Alertmanager knows (active, pending and recently expired)."""
        body = await self._call("GET", "/silences")
        if not isinstance(body, list):
            raise AlertmanagerError("GET /silences: expected a JSON list")
        return [s for s in body if isinstance(s, dict)]

    async def create(self, silence: dict[str, Any]) -> str:
        """Create a silence (or, with `id`, extend it in place); return its id."""
        body = await self._call("POST", "/silences", silence)
        if not isinstance(body, dict) or not isinstance(body.get("silenceID"), str):
            raise AlertmanagerError("POST /silences: no silenceID in the answer")
        return str(body["silenceID"])

    async def expire(self, silence_id: str) -> None:
        """Expire a silence; one that is already gone counts as expired."""
        await self._call("DELETE", f"/silence/{silence_id}", missing_ok=True)

    async def active_fingerprints(self) -> set[str]:
        """Return the fingerprints of every alert Alertmanager holds as firing, muted or not."""
        params = {"active": "true", "silenced": "true", "inhibited": "true", "unprocessed": "true"}
        body = await self._call("GET", "/alerts", params=params)
        if not isinstance(body, list):
            raise AlertmanagerError("GET /alerts: expected a JSON list")
        return {str(a["fingerprint"]) for a in body if isinstance(a, dict) and "fingerprint" in a}

    async def _call(
        self,
        method: str,
        path: str,
        json: Any = None,
        params: dict[str, str] | None = None,
        missing_ok: bool = False,
    ) -> Any:
        where = f"{method} {path}"
        try:
            async with self._http.request(
                method,
                self._base + path,
                json=json,
                params=params,
                headers=self._headers,
                timeout=self._timeout,
            ) as response:
                if missing_ok and response.status == 404:
                    return None
                if response.status >= 300:
                    text = (await response.text(errors="replace")).strip()
                    for secret in self._secrets:
                        text = text.replace(secret, "<redacted>")
                    detail = text[:MAX_ERROR_BODY]
                    raise AlertmanagerError(
                        f"{where}: HTTP {response.status} {detail}".rstrip(), response.status
                    )
                if response.content_length == 0 or method == "DELETE":
                    return None
                return await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            reason = str(exc) or type(exc).__name__
            raise AlertmanagerError(f"{where}: {reason}") from exc
