"""`troth value`: the value models' fits, the value distribution, and the holdout check."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from troth.cli.common import (
    ConfigOption,
    DbOption,
    JsonOption,
    console,
    fail,
    open_engine,
    parse_time,
    print_json,
)
from troth.value.scoring import MODELS


def value(
    calibration_end: Annotated[
        str | None,
        typer.Option(
            "--calibration-end",
            help="Holdout check: fit on orders up to this date and compare predicted with "
            "actual purchases after it.",
        ),
    ] = None,
    observation_end: Annotated[
        str | None,
        typer.Option(
            "--observation-end",
            help="End of the holdout period (default: the last stored order).",
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help=f"Purchase model for the holdout check: {', '.join(MODELS)} "
            "(default: \\[value] model)."
        ),
    ] = None,
    top: Annotated[
        int, typer.Option(min=1, help="Customers in the top-CEV and at-risk lists.")
    ] = 10,
    db: DbOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show what customers are worth: fitted models, CLV and CEV, top and at-risk customers."""
    if model is not None and model not in MODELS:
        fail(f"unknown model '{model}'; choose one of {', '.join(MODELS)}", 2)
    if calibration_end is None:
        if observation_end is not None or model is not None:
            fail(
                "--observation-end and --model belong to the holdout check: add --calibration-end",
                2,
            )
        with open_engine(db, config) as engine:
            overview = engine.value(top)
        if as_json:
            print_json(overview)
        else:
            render_overview(overview)
        return
    start = parse_time(calibration_end, "--calibration-end")
    end = None if observation_end is None else parse_time(observation_end, "--observation-end")
    with open_engine(db, config) as engine:
        check = engine.holdout(start, end, model)
    if as_json:
        print_json(check)
    else:
        render_holdout(check)


_UNITS = {"D": "day", "W": "week"}


def _money(value: float | None) -> str:
    """Return an amount with thousands separators, blank when missing."""
    return "" if value is None else f"{value:,.0f}"


def _params(record: dict[str, Any]) -> str:
    """Return 'name=estimate (SE)' for each fitted parameter."""
    errors = record["standard_errors"]
    return ", ".join(
        f"{name}={estimate:.4g}" + ("" if errors.get(name) is None else f" (±{errors[name]:.2g})")
        for name, estimate in record["params"].items()
    )


def render_overview(overview: dict[str, Any]) -> None:
    """Print the fits, the value distribution and the two customer lists."""
    console.print(
        f"[bold]Customer value[/] as of {(overview['as_of'] or '')[:10]}: "
        f"{overview['customers']:,} customers, {overview['buyers']:,} with orders"
    )
    fits = Table("model", "status", "parameters (±SE)", "log-lik.", "customers", title="Fits")
    for record in overview["models"]:
        fitted = record["status"] == "fitted"
        fits.add_row(
            record["model"],
            record["status"],
            _params(record) if fitted else record["message"],
            f"{record['log_likelihood']:,.1f}" if fitted else "",
            f"{record['customers']:,}",
        )
    console.print(fits)
    purchase = next((r for r in overview["models"] if r["component"] == "purchase"), None)
    if purchase and purchase["status"] == "fitted":
        d = purchase["diagnostics"]
        gap = 100 * (d["expected_repeat"] - d["observed_repeat"]) / max(d["observed_repeat"], 1)
        console.print(
            f"in-sample: {d['expected_repeat']:,.0f} repeat purchase "
            f"{_UNITS[purchase['period']]}s "
            f"expected against {d['observed_repeat']:,.0f} observed ({gap:+.1f}%), "
            f"{d['rows']:,} distinct (x, t_x, T) rows; a new customer is worth "
            f"{purchase['new_customer_value']:,.0f}"
        )
    totals = overview["totals"]
    console.print(
        "totals: "
        + ", ".join(
            f"{name.upper()} {_money(totals[name])}" for name in ("clv", "crv", "civ", "ckv", "cev")
        )
    )
    quantiles = Table(
        "among buyers",
        *(f"p{float(q) * 100:g}" for q in overview["quantiles"]["clv"]),
        title="Distribution",
    )
    for name, label in (("clv", "CLV"), ("cev", "CEV")):
        quantiles.add_row(label, *(_money(v) for v in overview["quantiles"][name].values()))
    quantiles.add_row(
        "P(alive)",
        *("" if v is None else f"{v:.2f}" for v in overview["quantiles"]["p_alive"].values()),
    )
    console.print(quantiles)
    console.print(
        "P(alive): "
        + ", ".join(f"{b['from']:g}-{b['to']:g} {b['buyers']:,}" for b in overview["p_alive_bands"])
    )
    render_top(overview["top_cev"])
    render_at_risk(overview["at_risk_customers"])
    console.print(
        f"at risk: {overview['at_risk']:,} customers, "
        f"{_money(totals['value_at_risk'])} of CLV at stake"
    )


def render_top(rows: list[dict[str, Any]]) -> None:
    """Print the customers with the highest CEV and its components."""
    table = Table(
        "customer",
        "orders",
        "P(alive)",
        "CLV",
        "CRV",
        "CIV",
        "CKV",
        "CEV",
        title="Top customers by CEV",
    )
    for row in rows:
        table.add_row(
            row["customer_id"],
            f"{row['orders']:,}",
            "" if row["p_alive"] is None else f"{row['p_alive']:.2f}",
            *(_money(row[c]) for c in ("clv", "crv", "civ", "ckv", "cev")),
        )
    console.print(table)


def render_at_risk(rows: list[dict[str, Any]]) -> None:
    """Print the at-risk customers: low P(alive), high CLV were they still buying."""
    table = Table(
        "customer",
        "orders",
        "revenue",
        "P(alive)",
        "CLV",
        "CLV if alive",
        "at stake",
        title="At risk: valuable customers who may have stopped buying",
    )
    for row in rows:
        table.add_row(
            row["customer_id"],
            f"{row['orders']:,}",
            _money(row["revenue"]),
            f"{row['p_alive']:.2f}",
            _money(row["clv"]),
            _money(row["clv_if_alive"]),
            _money(row["value_at_risk"]),
        )
    console.print(table)


def render_holdout(check: dict[str, Any]) -> None:
    """Print the holdout check: predicted vs actual purchases by calibration frequency."""
    unit = _UNITS[check["period"]]
    console.print(
        f"[bold]Holdout check[/] of {check['model']}: fitted on orders to "
        f"{check['calibration_end'][:10]} ({check['customers']:,} customers), holdout to "
        f"{check['observation_end'][:10]} ({check['holdout_periods']:g} {unit}s)"
    )
    console.print("parameters: " + ", ".join(f"{k}={v:.4g}" for k, v in check["params"].items()))
    table = Table(
        "x in calibration",
        "customers",
        "actual",
        "predicted",
        "error %",
        "naive",
        "naive error %",
        title=f"Purchase {unit}s per customer in the holdout",
    )
    rows = [*check["by_frequency"], {"frequency": "all", **check["total"]}]
    for row in rows:
        table.add_row(
            row["frequency"],
            f"{row['customers']:,}",
            f"{row['actual']:.2f}",
            f"{row['predicted']:.2f}",
            _percent(row["error_pct"]),
            f"{row['naive']:.2f}",
            _percent(row["naive_error_pct"]),
        )
    console.print(table)
    total = check["total"]
    console.print(
        f"total: {total['predicted_total']:,.0f} predicted against {total['actual_total']:,.0f} "
        f"actual ({_percent(total['error_pct'])}); mean absolute error per customer "
        f"{total['mae']:.2f} (naive x/T rate: {total['naive_mae']:.2f})"
    )


def _percent(value: float | None) -> str:
    """Return a signed percentage, or 'n/a' when there was nothing to compare with."""
    return "n/a" if value is None else f"{value:+.1f}%"
