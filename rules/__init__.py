"""Alert and recording rules rendered from `rules/thresholds.yaml` (`python -m rules generate`)."""
