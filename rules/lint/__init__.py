"""`python -m rules lint`: check rule files against the series a live Prometheus holds.

`promql` finds the selectors and label names in an expression, `checks` asks Prometheus about
them, `cli` prints `file: group/rule: message` lines.
"""
