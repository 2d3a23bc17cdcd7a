"""Run `python -m dashboards generate [--check]`."""

import sys

from dashboards.generate import main

sys.exit(main())
