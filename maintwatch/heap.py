"""The garbage collector in a long-running server: what start-up built stays out of its way.

CPython's full collections walk every tracked object. In a server most of them are built at
start-up and live as long as the process (modules, the config, the routes, the templates), so
each full collection paused the event loop for tens of milliseconds, on whichever request was
running: the receiver's webhook p99 under `wrk` at 32 connections was ~40 ms, ~9 ms once
they were frozen (benchmarks/README.md).
"""

from __future__ import annotations

import gc

# Objects allocated (net) before a young collection; CPython's default is 700. A request
# allocates hundreds, most freed by reference counting: fewer, larger young collections.
YOUNG_THRESHOLD = 10_000


def settle() -> None:
    """Freeze what is alive now, after collecting what is not; call once started (again
    after a reload, which unfreezes first so the replaced objects can be collected)."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
