"""Plotly figures as plain data (the browser draws them with the plotly.js the portal serves itself),
and the table behind each. A figure is {"data": [traces], "layout": {...}}; same input, same JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from jinja2.utils import htmlsafe_json_dumps
from markupsafe import Markup

COLORS = ("#2563eb", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#0ea5e9", "#84cc16", "#ec4899")


@dataclass
class Chart:
    id: str
    title: str
    figure: dict
    headers: list[str]
    rows: list[list] = field(default_factory=list)  # the numbers behind the chart, shown as a table

    @cached_property
    def figure_json(self) -> Markup:
        """The figure as JSON safe inside a <script> element (Jinja's tojson, made once per chart)."""
        return htmlsafe_json_dumps(self.figure, sort_keys=True)


def _layout(y_title: str, *, y2_title: str | None = None, bar_mode: str | None = None) -> dict:
    layout = {"margin": {"l": 60, "r": 60 if y2_title else 20, "t": 10, "b": 50}, "height": 320,
              "yaxis": {"title": {"text": y_title}, "rangemode": "tozero"},
              "legend": {"orientation": "h", "y": -0.2}, "hovermode": "x unified"}
    if y2_title:
        layout["yaxis2"] = {"title": {"text": y2_title}, "overlaying": "y", "side": "right", "rangemode": "tozero"}
    if bar_mode:
        layout["barmode"] = bar_mode
    return layout


def bar_and_line(chart_id: str, title: str, labels: list[str], bars: list[float], line: list[float], *,
                 bar_name: str, line_name: str) -> Chart:
    """Bars on the left axis and a line on the right one (e.g. GPU-hours and cost per month)."""
    figure = {"data": [
        {"type": "bar", "name": bar_name, "x": labels, "y": [round(v, 2) for v in bars],
         "marker": {"color": COLORS[0]}},
        {"type": "scatter", "mode": "lines+markers", "name": line_name, "x": labels,
         "y": [round(v, 2) for v in line], "yaxis": "y2", "line": {"color": COLORS[1]}},
    ], "layout": _layout(bar_name, y2_title=line_name)}
    rows = [[label, f"{b:.2f}", f"{v:.2f}"] for label, b, v in zip(labels, bars, line, strict=True)]
    return Chart(chart_id, title, figure, ["", bar_name, line_name], rows)


def bars(chart_id: str, title: str, labels: list[str], values: list[float], *, value_name: str,
         extra: dict[str, list[float]] | None = None, horizontal: bool = False) -> Chart:
    trace = {"type": "bar", "name": value_name, "marker": {"color": COLORS[0]}}
    if horizontal:
        trace |= {"x": [round(v, 2) for v in values], "y": labels, "orientation": "h"}
        layout = _layout("") | {"yaxis": {"autorange": "reversed", "automargin": True},
                                "xaxis": {"title": {"text": value_name}}}
    else:
        trace |= {"x": labels, "y": [round(v, 2) for v in values]}
        layout = _layout(value_name)
    extra = extra or {}
    rows = [[label, f"{v:.2f}", *(f"{extra[k][i]:.2f}" for k in extra)] for i, (label, v) in enumerate(
        zip(labels, values, strict=True))]
    return Chart(chart_id, title, {"data": [trace], "layout": layout}, ["", value_name, *extra], rows)


def lines(chart_id: str, title: str, x: list[str], series: dict[str, list[float]], *, y_name: str) -> Chart:
    """One line per series (e.g. per node, or per day), with the table listing every point."""
    data = [{"type": "scatter", "mode": "lines+markers" if len(x) <= 62 else "lines", "name": name, "x": x,
             "y": [round(v, 3) for v in values], "line": {"color": COLORS[i % len(COLORS)]}}
            for i, (name, values) in enumerate(series.items())]
    rows = [[x[i], *(f"{values[i]:.2f}" for values in series.values())] for i in range(len(x))]
    return Chart(chart_id, title, {"data": data, "layout": _layout(y_name)}, ["", *series], rows)
