"""The overview's data: the engine's aggregates shaped for the page, the report and charts.

Everything here is counted by the database; a page never receives every customer. Customer
lists (top value, at risk, cognitive loyalty) are added only for a reader allowed to see
people, and links only where there is a server to follow them to.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlencode

from troth.dashboard import charts
from troth.engagement.attributes import ATTRIBUTES
from troth.engagement.stages import PHASES, STAGES
from troth.engagement.transitions import MOVED_TO
from troth.engine import Engine

__all__ = ["customers_url", "cycle_layout", "overview", "range_label"]


def customers_url(**params: Any) -> str:
    """Return the customer list's address with these filters (None values left out)."""
    kept = {k: v for k, v in params.items() if v is not None and v is not False}
    kept = {k: ("1" if v is True else _plain_number(v)) for k, v in kept.items()}
    return "/customers" + (f"?{urlencode(kept)}" if kept else "")


def _plain_number(value: Any) -> str:
    """Return a number without a needless '.0' (10.0 -> '10'); other values as text."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def range_label(low: float | None, high: float | None) -> str:
    """Return a bin's label: '10-20', '>= 90', '< -50'."""
    if low is None:
        return f"< {_plain_number(high)}"
    if high is None:
        return f"≥ {_plain_number(low)}"
    return f"{_plain_number(low)} to {_plain_number(high)}"


def _bins(
    column: str, bins: list[dict[str, Any]], links: bool, **also: Any
) -> list[dict[str, Any]]:
    """Return bins as rows {label, from, to, customers[, url]} for a chart and its table."""
    rows = []
    for b in bins:
        row = {
            "label": range_label(b["from"], b["to"]),
            "from": b["from"],
            "to": b["to"],
            "customers": b["customers"],
        }
        if links:
            row["url"] = customers_url(
                **also, **{f"{column}_min": b["from"], f"{column}_max": b["to"]}
            )
        rows.append(row)
    return rows


def cycle_layout(counts: dict[str, int], size: int = 360) -> list[dict[str, Any]]:
    """Return the seven stages placed on a circle (SVG units), sized by their customers.

    Each node carries the arrow to the next stage of the cycle (engagement leads back to
    connection: engaged customers bring new ones), shortened to the circles' edges.
    """
    centre, radius = size / 2, size / 2 - 75
    largest = max(counts.values(), default=0) or 1
    nodes = []
    for i, stage in enumerate(STAGES):
        angle = -math.pi / 2 + 2 * math.pi * i / len(STAGES)
        n = counts.get(stage, 0)
        size_r = 12 + 30 * math.sqrt(n / largest)
        # The name sits outside the circle, away from the centre, so small stages stay legible.
        label_at = radius + size_r + 6
        nodes.append(
            {
                "stage": stage,
                "phase": PHASES[stage],
                "customers": n,
                "x": round(centre + radius * math.cos(angle), 1),
                "y": round(centre + radius * math.sin(angle), 1),
                "r": round(size_r, 1),
                "lx": round(centre + label_at * math.cos(angle), 1),
                "ly": round(centre + label_at * math.sin(angle) + 4, 1),
                "anchor": (
                    "start"
                    if math.cos(angle) > 0.3
                    else "end"
                    if math.cos(angle) < -0.3
                    else "middle"
                ),
                "colour": charts.PHASE_COLOURS[PHASES[stage]],
            }
        )
    for i, node in enumerate(nodes):
        after = nodes[(i + 1) % len(nodes)]
        dx, dy = after["x"] - node["x"], after["y"] - node["y"]
        length = math.hypot(dx, dy) or 1
        start, end = node["r"] + 3, length - after["r"] - 6
        node["arrow"] = {
            "x1": round(node["x"] + dx * start / length, 1),
            "y1": round(node["y"] + dy * start / length, 1),
            "x2": round(node["x"] + dx * max(end, start) / length, 1),
            "y2": round(node["y"] + dy * max(end, start) / length, 1),
        }
    return nodes


def overview(engine: Engine, *, personal: bool, links: bool, top: int = 10) -> dict[str, Any]:
    """Return everything the overview shows: counts, bins, lists (if `personal`), chart specs.

    `links` adds to each number the address of the customer list behind it.
    """
    distribution = engine.stage_distribution()
    transitions = engine.transitions()
    ladder = engine.ladder()
    shapes = engine.distributions()
    value = engine.value(top if personal else 0)

    def link(**params: Any) -> str | None:
        return customers_url(**params) if links else None

    stages = [
        {
            "stage": s,
            "phase": PHASES[s],
            "customers": distribution["by_stage"][s],
            "url": link(stage=s),
        }
        for s in STAGES
    ]
    phases = [
        {"phase": p, "customers": n, "url": link(phase=p)}
        for p, n in distribution["by_phase"].items()
    ]
    periods = transitions.get("periods", [])
    latest = periods[-1] if len(periods) > 1 else None
    flows = transitions.get("flows", {}).get(latest, {}) if latest else {}
    attributes = {
        a: _bins(a, shapes["attributes"][a], links) for a in ATTRIBUTES if a in shapes["attributes"]
    }
    card = _bins("card_balance", shapes["card"]["bins"], links)
    value_bins = {
        c: _bins(c, shapes["value"][c]["bins"], links, orders_min=1) for c in ("clv", "cev")
    }
    p_alive = [
        {
            "label": range_label(band["from"], band["to"] if band["to"] < 1 else None),
            "from": band["from"],
            "to": band["to"] if band["to"] < 1 else None,
            "customers": band["buyers"],
            **(
                {"url": customers_url(p_alive_min=band["from"], p_alive_max=band["to"])}
                if links and band["to"] < 1
                else {"url": customers_url(p_alive_min=band["from"])}
                if links
                else {}
            ),
        }
        for band in value["p_alive_bands"]
    ]
    specs: dict[str, Any] = {
        "ladder": charts.ladder_chart(ladder),
        "card": charts.bar_chart("Engagement card balance", card, "points"),
        "clv": charts.bar_chart("CLV of buyers", value_bins["clv"], "CLV", "buyers"),
        "cev": charts.bar_chart("CEV of buyers", value_bins["cev"], "CEV", "buyers"),
        "p_alive": charts.bar_chart("P(alive) of buyers", p_alive, "P(alive)", "buyers"),
        **{
            f"attribute-{a}": charts.bar_chart(f"{a.capitalize()} (0-100)", rows, a)
            for a, rows in attributes.items()
        },
    }
    # The list reads a stage's inflow as moved_to alone, its outflow as moved_from alone.
    flow_rows = [
        {
            "stage": s,
            **flows[s],
            "url": link(stage=s),
            "inflow_url": link(moved_to=s),
            "outflow_url": link(moved_from=s),
            "stayed_url": link(moved_from=s, moved_to=s),
        }
        for s in STAGES
        if s in flows
    ]
    matrix = transitions["matrices"][latest] if latest else {}
    # Nobody moves to "new": its column is always empty, as in the heat map.
    matrix_columns = list(MOVED_TO) if matrix else []
    matrix_rows = [
        {
            "from": source,
            "cells": [
                {
                    "to": target,
                    "customers": targets.get(target, 0),
                    "url": link(moved_from=source, moved_to=target),
                }
                for target in matrix_columns
            ],
        }
        for source, targets in matrix.items()
    ]
    if latest:
        specs["stages-over-time"] = charts.stages_over_time_chart(transitions)
        specs["transitions"] = charts.transition_chart(latest, transitions["matrices"][latest])
    data: dict[str, Any] = {
        "as_of": distribution["as_of"],
        "customers": distribution["customers"],
        "stages": stages,
        "phases": phases,
        "cycle": cycle_layout(distribution["by_stage"]),
        "no_stage": distribution["no_stage"],
        "cognitive_loyalty": {
            "customers": distribution["cognitive_loyalty"],
            "url": link(cognitive_loyalty=True),
        },
        "withheld": distribution["withheld"],
        "withheld_by_reason": distribution["withheld_by_reason"],
        "latest_period": latest,
        "flows": flow_rows,
        "matrix_columns": matrix_columns,
        "matrix": matrix_rows,
        "ladder": [
            {
                "rung": spec_row["rung"],
                "customers": spec_row["customers"],
                "url": link(rung=spec_row["rung"]),
            }
            for spec_row in specs["ladder"]["data"]["values"]
        ],
        "ladder_conversion": ladder.get("overall", {}).get("conversion", {}),
        "attributes": attributes,
        "card": card,
        "value": {
            "buyers": value["buyers"],
            "at_risk": value["at_risk"],
            "at_risk_url": link(at_risk=True),
            "totals": value["totals"],
            "clv": value_bins["clv"],
            "cev": value_bins["cev"],
            "p_alive": p_alive,
        },
        "personal": personal,
        "charts": specs,
    }
    if personal:
        data["top_cev"] = value["top_cev"]
        data["at_risk_customers"] = value["at_risk_customers"]
        data["cognitive_customers"] = engine.customers(
            cognitive_loyalty=True, sort="clv", limit=top
        )["customers"]
    return data
