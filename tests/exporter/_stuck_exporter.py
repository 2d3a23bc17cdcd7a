"""The real exporter process, plus a collector kind `stuck` whose every refresh leaves a worker
thread blocked for good: what a hung NFS mount does to `stat()`, which no code can interrupt.

Run as `python -m tests.exporter._stuck_exporter <exporter flags>`.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence

from prometheus_client.core import Metric

from exporter.cli import main
from exporter.collectors.registry import REGISTRY
from tests.exporter._fake_collector import FakeCollector


class StuckCollector(FakeCollector):
    """Block one of its kind's worker threads forever on its first refresh."""

    kind = "stuck"

    async def refresh(self) -> Sequence[Metric]:
        await self.blocking.run(threading.Event().wait)  # never set: the call never returns
        return await super().refresh()


if __name__ == "__main__":
    REGISTRY[StuckCollector.kind] = StuckCollector
    sys.exit(main(sys.argv[1:]))
