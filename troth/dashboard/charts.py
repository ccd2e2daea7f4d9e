"""Vega-Lite specifications of the overview's charts, built from aggregates only.

Each spec carries its data inline (a few dozen rows at most, whatever the number of
customers). A row's `url`, when present, is where clicking its mark leads: the customers
behind the number; the static report leaves it out.
"""

from __future__ import annotations

from typing import Any

from troth.engagement.ladder import RUNGS
from troth.engagement.stages import PHASES, STAGES

__all__ = [
    "PHASE_COLOURS",
    "bar_chart",
    "ladder_chart",
    "stages_over_time_chart",
    "transition_chart",
]

_SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"  # an identifier, never fetched
PHASE_COLOURS = {"relationship": "#6baed6", "trust": "#3182bd", "loyalty": "#08519c"}
STAGE_COLOURS = {stage: PHASE_COLOURS[PHASES[stage]] for stage in STAGES}
_STAGE_SCALE = {
    "domain": list(STAGES),
    "range": ["#c6dbef", "#9ecae1", "#6baed6", "#4292c6", "#2171b5", "#08519c", "#08306b"],
}


def _base(title: str, rows: list[dict[str, Any]], height: int = 180) -> dict[str, Any]:
    """Return the parts every spec shares: schema, title, inline data, size."""
    return {
        "$schema": _SCHEMA,
        "title": {"text": title, "anchor": "start", "fontSize": 13},
        "data": {"values": rows},
        "width": "container",
        "height": height,
        "config": {"view": {"stroke": None}, "axis": {"labelFontSize": 11}},
    }


def _href(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Return the href encoding when the rows carry urls (clicking a mark opens the list)."""
    return {"href": {"field": "url"}} if any("url" in r for r in rows) else {}


def bar_chart(
    title: str, rows: list[dict[str, Any]], x_title: str, y_title: str = "customers"
) -> dict[str, Any]:
    """Return a histogram-like bar chart of rows {label, customers[, url]} in their order."""
    spec = _base(title, rows)
    spec["mark"] = {"type": "bar", "color": "#3182bd", "cursor": "pointer"}
    spec["encoding"] = {
        "x": {
            "field": "label",
            "type": "ordinal",
            "sort": None,
            "title": x_title,
            "axis": {"labelAngle": -40},
        },
        "y": {"field": "customers", "type": "quantitative", "title": y_title},
        "tooltip": [
            {"field": "label", "title": x_title},
            {"field": "customers", "type": "quantitative", "title": y_title},
        ],
        **_href(rows),
    }
    return spec


def ladder_chart(ladder: dict[str, Any], urls: dict[str, str] | None = None) -> dict[str, Any]:
    """Return the inform-to-advocate ladder as horizontal bars with each rung's conversion."""
    overall = ladder.get("overall", {})
    reached = overall.get("reached", {})
    conversion = overall.get("conversion", {})
    rows = []
    for i, rung in enumerate(RUNGS):
        step = f"{RUNGS[i - 1]}_to_{rung}" if i else None
        rate = conversion.get(step) if step else None
        row: dict[str, Any] = {
            "rung": rung,
            "customers": int(reached.get(rung, 0)),
            "conversion": "" if rate is None else f"{rate:.0%} from {RUNGS[i - 1]}",
        }
        if urls and rung in urls:
            row["url"] = urls[rung]
        rows.append(row)
    spec = _base("The ladder: customers who reached each rung", rows, height=160)
    spec["encoding"] = {
        "y": {"field": "rung", "type": "ordinal", "sort": list(RUNGS), "title": None},
        "x": {"field": "customers", "type": "quantitative", "title": "customers"},
        "tooltip": [
            {"field": "rung"},
            {"field": "customers", "type": "quantitative"},
            {"field": "conversion"},
        ],
    }
    spec["layer"] = [
        {"mark": {"type": "bar", "color": "#2171b5"}},
        {
            "mark": {"type": "text", "align": "left", "dx": 4, "fontSize": 11},
            "encoding": {"text": {"field": "conversion"}},
        },
    ]
    return spec


def stages_over_time_chart(transitions: dict[str, Any]) -> dict[str, Any]:
    """Return customers per stage at each snapshot (stacked areas): how the cycle filled up."""
    rows = []
    for period, matrix in transitions.get("matrices", {}).items():
        for stage in STAGES:
            n = sum(row.get(stage, 0) for row in matrix.values())
            rows.append({"period": period, "stage": stage, "customers": n})
    spec = _base("Customers per stage at the end of each period", rows, height=200)
    spec["mark"] = {"type": "area", "line": False, "interpolate": "monotone"}
    spec["encoding"] = {
        "x": {"field": "period", "type": "ordinal", "title": None},
        "y": {"field": "customers", "type": "quantitative", "stack": "zero"},
        "color": {
            "field": "stage",
            "type": "nominal",
            "sort": list(STAGES),
            "scale": _STAGE_SCALE,
        },
        "order": {"field": "stage_rank", "type": "quantitative"},
        "tooltip": [
            {"field": "period"},
            {"field": "stage"},
            {"field": "customers", "type": "quantitative"},
        ],
    }
    for row in rows:
        row["stage_rank"] = STAGES.index(row["stage"])
    return spec


def transition_chart(period: str, matrix: dict[str, dict[str, int]]) -> dict[str, Any]:
    """Return the transition matrix into `period` as a heat map: from (rows) to (columns)."""
    states = list(matrix)
    rows = [
        {"from": source, "to": target, "customers": n}
        for source, targets in matrix.items()
        for target, n in targets.items()
        if n and target != "new"
    ]
    # Labels on the darkest cells (about the top two thirds of the log scale) turn white.
    dark = max((r["customers"] for r in rows), default=0) ** (1 / 3) if rows else 0
    spec = _base(f"Moves between stages into {period}", rows, height=230)
    spec["encoding"] = {
        "y": {"field": "from", "type": "ordinal", "sort": states, "title": "from"},
        "x": {
            "field": "to",
            "type": "ordinal",
            "sort": [s for s in states if s != "new"],
            "title": "to",
            "axis": {"labelAngle": -40, "orient": "top"},
        },
        "tooltip": [
            {"field": "from"},
            {"field": "to"},
            {"field": "customers", "type": "quantitative"},
        ],
    }
    spec["layer"] = [
        {
            "mark": "rect",
            "encoding": {
                "color": {
                    "field": "customers",
                    "type": "quantitative",
                    "scale": {"type": "log", "scheme": "blues"},
                    "legend": None,
                }
            },
        },
        {
            "mark": {"type": "text", "fontSize": 10},
            "encoding": {
                "text": {"field": "customers", "type": "quantitative"},
                "color": {
                    "condition": {"test": f"datum.customers > {dark**2:.0f}", "value": "white"},
                    "value": "black",
                },
            },
        },
    ]
    return spec
