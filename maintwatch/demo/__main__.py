"""Run `python -m maintwatch.demo [--check]`."""

import sys

from maintwatch.demo.launcher import main

sys.exit(main())
