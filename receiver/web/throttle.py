"""Login throttling (pure): failed logins counted per client and in total, in fixed windows.

A client past `per_client` failures in a window, or everyone once `total` failures arrived in
one, is refused until the window ends, correct password or not: guessing stays slow even from
many addresses. Memory is bounded: past `MAX_CLIENTS` tracked clients, finished windows go.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import Field

from maintwatch.configload import Duration, StrictModel

MAX_CLIENTS = 10_000


class LoginThrottleConfig(StrictModel):
    """How many failed logins a window allows, per client address and in total."""

    per_client: int = Field(default=10, ge=1)
    total: int = Field(default=100, ge=1)
    window: Duration = Field(default=300.0, gt=0)


@dataclass
class _Window:
    start: float
    failures: int = 0


@dataclass
class LoginThrottle:
    """Count failures; `wait` says how long a client must wait before it may try again."""

    config: LoginThrottleConfig
    _clients: dict[str, _Window] = field(default_factory=dict)
    _total: _Window = field(default_factory=lambda: _Window(float("-inf")))

    def wait(self, client: str, now: float) -> float:
        """Return seconds until `client` may try a login (0: now)."""
        out = 0.0
        limits = [(self._total, self.config.total)]
        if client in self._clients:
            limits.append((self._clients[client], self.config.per_client))
        for window, cap in limits:
            if self._current(window, now) and window.failures >= cap:
                out = max(out, window.start + self.config.window - now)
        return out

    @property
    def window(self) -> float:
        """Return the window length in seconds."""
        return self.config.window

    def failed(self, client: str, now: float) -> bool:
        """Count one failed login of `client`; return True when this one reached a limit."""
        reached = False
        limits = (
            (self._total, self.config.total),
            (self._client(client, now), self.config.per_client),
        )
        for window, cap in limits:
            if not self._current(window, now):
                window.start, window.failures = now, 0
            window.failures += 1
            reached = reached or window.failures == cap
        return reached

    def _current(self, window: _Window, now: float) -> bool:
        return now < window.start + self.config.window

    def _client(self, client: str, now: float) -> _Window:
        found = self._clients.get(client)
        if found is None:
            if len(self._clients) >= MAX_CLIENTS:
                self._clients = {k: w for k, w in self._clients.items() if self._current(w, now)}
            if len(self._clients) >= MAX_CLIENTS:  # all current: the total limit still holds
                self._clients.pop(next(iter(self._clients)))
            found = self._clients[client] = _Window(float("-inf"))
        return found
