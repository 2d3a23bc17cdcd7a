"""Per-alert graphs on the incident page: PromQL read from the alert, Prometheus' range API,
inline SVG. `fetch` does the I/O; `promql` and `svg` are pure."""

from receiver.web.graphs.fetch import GRAPHS, Graphs, Shown, graphs_ctx

__all__ = ["GRAPHS", "Graphs", "Shown", "graphs_ctx"]
