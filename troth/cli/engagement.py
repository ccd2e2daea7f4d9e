"""`troth score` and `troth stages`: the engagement model from the command line."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from troth.cli.common import (
    ConfigOption,
    DbOption,
    JsonOption,
    console,
    open_engine,
    parse_time,
    print_json,
)
from troth.engagement.stages import PHASES, STAGES


def _as_of(text: str | None) -> datetime | None:
    """Return --as-of as a UTC time (a date means its midnight UTC), or None for now."""
    return None if text is None else parse_time(text, "--as-of")


def score(
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Score as of this date (default: now).")
    ] = None,
    db: DbOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Compute every customer's features and engagement stage, and store them."""
    when = _as_of(as_of)
    with open_engine(db, config) as engine, console.status("scoring…") as status:
        summary = engine.score(when, progress=lambda step: status.update(f"scoring: {step}"))
    if as_json:
        print_json({**summary.__dict__, "as_of": summary.as_of.isoformat()})
        return
    withheld = f"; {summary.withheld:,} withheld: no consent" if summary.withheld else ""
    console.print(
        f"scored {summary.customers:,} customers as of {summary.as_of:%Y-%m-%d %H:%M} UTC{withheld}"
    )
    print_distribution(
        {"by_stage": summary.by_stage, "cognitive_loyalty": summary.cognitive_loyalty}
    )


def stages(
    transitions: Annotated[
        bool,
        typer.Option(
            "--transitions",
            help="Also show how customers moved between stages: the last period's matrix, "
            "inflow and outflow per period, and cohort flows.",
        ),
    ] = False,
    ladder: Annotated[
        bool,
        typer.Option(
            "--ladder",
            help="Also show the ladder (inform, entice, activate, reciprocate, advocate): "
            "customers per rung and conversion, overall, by segment and by acquisition channel.",
        ),
    ] = False,
    db: DbOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show customers by engagement stage and phase, from the last `troth score`."""
    with open_engine(db, config) as engine:
        distribution = engine.stage_distribution()
        moves = engine.transitions() if transitions else None
        rungs = engine.ladder() if ladder else None
    if as_json:
        extra = {"transitions": moves} if moves else {}
        print_json({**distribution, **extra, **({"ladder": rungs} if rungs else {})})
        return
    console.print(f"as of {distribution['as_of']}: {distribution['customers']:,} customers")
    for reason, n in distribution["withheld_by_reason"].items():
        console.print(f"withheld ({reason}): {n:,} customers, in no count below")
    print_distribution(
        {**distribution, "by_stage": {**distribution["by_stage"], "none": distribution["no_stage"]}}
    )
    phases = Table("phase", "customers", title="By phase")
    for phase, n in distribution["by_phase"].items():
        phases.add_row(phase, f"{n:,}")
    console.print(phases)
    if moves:
        print_transitions(moves)
    if rungs:
        print_ladder(rungs)


def print_ladder(ladder: dict[str, Any]) -> None:
    """Print customers per rung with the conversion from the rung below, per group."""
    groups = {"all customers": ladder["overall"]}
    groups |= {f"plan: {k}": v for k, v in ladder["by_segment"].items()}
    groups |= {f"channel: {k}": v for k, v in ladder["by_channel"].items()}
    rungs = list(ladder["overall"]["reached"])
    table = Table(
        "group", *rungs, title="Ladder: customers per rung (conversion from the one below)"
    )
    for name, group in groups.items():
        cells = []
        for i, rung in enumerate(rungs):
            n = group["reached"][rung]
            rate = group["conversion"].get(f"{rungs[i - 1]}_to_{rung}") if i else None
            cells.append(f"{n:,}" + ("" if rate is None else f" ({100 * rate:.0f}%)"))
        table.add_row(name, *cells)
    console.print(table)


def print_transitions(moves: dict[str, Any]) -> None:
    """Print the last period's transition matrix, flows per period and cohort flows."""
    if not moves["matrices"]:
        console.print("one snapshot only: transitions need two periods of history")
        return
    last = moves["periods"][-1]
    matrix = moves["matrices"][last]
    rows = [s for s in matrix if any(matrix[s].values())]
    cols = [s for s in matrix if any(r[s] for r in matrix.values())]
    grid = Table("from \\ to", *(_short(s) for s in cols), title=f"Moves into {last} (customers)")
    for row in rows:
        grid.add_row(row, *(f"{matrix[row][col]:,}" if matrix[row][col] else "" for col in cols))
    console.print(grid)
    recent = list(moves["flows"].items())[-6:]
    flows = Table("stage", *(p for p, _ in recent), title="Inflow / outflow per stage")
    for stage in STAGES:
        flows.add_row(stage, *(f"+{f[stage]['inflow']} -{f[stage]['outflow']}" for _, f in recent))
    console.print(flows)
    periods = moves["periods"][-6:]
    cohorts = Table("first seen", *periods, title="Cohort flows: customers in trust or loyalty")
    for cohort, by_period in moves["cohorts"].items():
        cells = []
        for period in periods:
            stages_then = by_period.get(period, {})
            active = sum(stages_then.values())
            deep = sum(n for s, n in stages_then.items() if PHASES.get(s) in ("trust", "loyalty"))
            cells.append(f"{deep:,}/{active:,}" if active else "")
        cohorts.add_row(cohort, *cells)
    console.print(cohorts)
    console.print("cohort cells: customers in the trust or loyalty phase / customers with a stage")


def _short(state: str) -> str:
    """Return a stage name cut to fit a matrix column."""
    return state if len(state) <= 6 else state[:5] + "."


def print_distribution(distribution: dict[str, Any]) -> None:
    """Print customers per stage as a table, with the cognitive-loyalty count."""
    total = sum(distribution["by_stage"].values()) or 1
    table = Table("stage", "customers", "share", title="By stage (Sashi's cycle)")
    for stage, n in distribution["by_stage"].items():
        label = "(none: no activity in the window)" if stage == "none" else stage
        table.add_row(label, f"{n:,}", f"{100 * n / total:.1f}%")
    console.print(table)
    console.print(
        f"cognitive loyalty (retained without emotional signals): "
        f"{distribution['cognitive_loyalty']:,}"
    )
