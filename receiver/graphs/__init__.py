"""Per-alert graphs: PromQL read from the alert, Prometheus' range API, then inline SVG for
the incident page or PNG for mail. `fetch` does the I/O; the rest is pure."""

from receiver.graphs.curves import Curves
from receiver.graphs.fetch import GRAPHS, GraphError, Graphs, Shown, graphs_ctx
from receiver.graphs.png import png
from receiver.graphs.settings import GraphsConfig

__all__ = ["GRAPHS", "Curves", "GraphError", "Graphs", "GraphsConfig", "Shown", "graphs_ctx", "png"]
