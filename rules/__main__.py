"""Run `python -m rules generate [--check]`."""

import sys

from rules.generate import main

sys.exit(main())
