"""Run `python -m rules generate | backtest | lint`."""

import sys

from rules.cli import main

sys.exit(main())
