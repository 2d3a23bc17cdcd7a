"""HTTP basic auth, by hand: aiohttp.BasicAuth is deprecated and its replacement
(`aiohttp.encode_basic_auth`) needs a newer aiohttp than the range both services accept."""

from __future__ import annotations

import base64


def basic_auth(username: str, password: str) -> str:
    """Return the `Authorization` header value for HTTP basic auth."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
