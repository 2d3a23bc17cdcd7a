"""Applications: the collector (maintenance mode, logs, directories) and its access-log parser."""
