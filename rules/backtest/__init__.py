"""`python -m rules backtest`: how the current and proposed thresholds would have alerted.

`rulesets` renders both rule sets, `evaluate` asks Prometheus for each alert expression over
the range, `statemachine` replays Prometheus' alerting state machine on the answers, `stats`
and `diff` count, `run` ties those together, `report` prints, `threshold` splits `value op
number`, which `plot` draws and `suggest` searches; `cli` holds the flags.
"""
