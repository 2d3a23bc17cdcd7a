"""Demo traffic: append Laravel log entries, half of them errors, until SIGTERM.

Run by the demo's supervisord as `python -m maintwatch.demo.traffic --log PATH`. At the default
pace (one entry a second) that is 30 errors a minute, over the 10/min AppErrorRateHigh threshold.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from maintwatch.demo.world import log_line

MESSAGES = (
    ("info", 'Order 1042 paid {"amount":"49.90"}'),
    ("error", 'Payment gateway timed out {"exception":"cURL error 28: Operation timed out"}'),
)


def entry(tick: int, now: float) -> str:
    """Return the log entry for the `tick`-th step (pure: every other one is an error)."""
    level, message = MESSAGES[tick % len(MESSAGES)]
    return log_line(now, level, message)


def run(log: Path, every: float, stop: threading.Event) -> int:
    """Append one entry per `every` seconds until `stop` is set; return the entries written."""
    tick = 0
    while not stop.is_set():
        with log.open("a", encoding="utf-8") as handle:
            handle.write(entry(tick, time.time()))
        tick += 1
        stop.wait(every)
    return tick


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse flags, stop cleanly on SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(prog="python -m maintwatch.demo.traffic")
    parser.add_argument("--log", type=Path, required=True, help="Laravel log file to append to")
    parser.add_argument("--every", type=float, default=1.0, help="seconds between entries")
    args = parser.parse_args(argv)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    written = run(args.log, args.every, stop)
    print(f"traffic stopped after {written} entries", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
