"""`troth import`, `troth generate` and `troth demo`: getting events into the store."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from troth.cli.common import (
    ConfigOption,
    DbOption,
    JsonOption,
    console,
    err_console,
    fail,
    open_engine,
    print_json,
    settings_for,
)
from troth.cli.engagement import print_distribution
from troth.cli.value import render_at_risk, render_top
from troth.dashboard import write_report
from troth.demo import write_events_parquet
from troth.errors import TrothError
from troth.ingest.mapping import TableMapping, mapping_from_settings, parse_map_options


def _progress(description: str) -> Progress:
    """Return a rich progress bar with counts and elapsed time, on stderr so --json stays clean."""
    return Progress(
        TextColumn(f"[bold]{description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=False,
    )


def import_command(
    path: Annotated[Path, typer.Argument(help="CSV, JSONL or Parquet file.", exists=False)],
    map_: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            help="column=field\\[:kind], e.g. amount=properties.revenue:number (repeatable).",
        ),
    ] = None,
    event: Annotated[
        str | None, typer.Option(help="Event name for every row of a mapped table.")
    ] = None,
    call_type: Annotated[
        str | None,
        typer.Option("--type", help="Call type for every mapped row \\[default: track]."),
    ] = None,
    mapping: Annotated[
        str | None, typer.Option(help="Use the \\[mapping.NAME] section of troth.toml.")
    ] = None,
    db: DbOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Import events from a file; rejected rows go to PATH.rejects.jsonl with the reason."""
    settings = settings_for(config)
    table_mapping = _mapping(map_ or [], event, call_type, mapping, settings.mapping)
    if not path.exists():
        fail(f"{path} does not exist")
    with open_engine(db, config) as engine, _progress(f"importing {path.name}") as bar:
        task = bar.add_task("import", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        summary = engine.import_file(path, mapping=table_mapping, progress=advance)
    if as_json:
        print_json(summary.__dict__)
        return
    console.print(
        f"{summary.rows:,} rows read: [green]{summary.inserted:,} stored[/], "
        f"{summary.duplicates:,} already stored, [red]{summary.rejected:,} rejected[/] "
        f"in {summary.seconds:.1f} s"
    )
    if summary.suppressed:
        console.print(f"{summary.suppressed:,} rows name an erased person: not stored")
    if summary.rejects_path:
        console.print(f"rejected rows and reasons: {summary.rejects_path}")


def _mapping(
    options: list[str],
    event: str | None,
    call_type: str | None,
    name: str | None,
    configured: dict,
) -> TableMapping | None:
    """Return the column mapping asked for on the command line or in troth.toml, if any."""
    if name is not None:
        if name not in configured:
            known = ", ".join(sorted(configured)) or "none"
            fail(f"no [mapping.{name}] in the config (known: {known})", 2)
        try:
            base = mapping_from_settings(configured[name])
        except (TrothError, ValueError) as exc:
            fail(f"[mapping.{name}]: {exc}", 2)
    else:
        base = None
    try:
        fields = parse_map_options(options)
    except ValueError as exc:
        fail(str(exc), 2)
    if base is None and not fields:
        if event or call_type:
            fail("--event and --type need column mappings (--map column=field)", 2)
        return None
    if base is None:
        base = TableMapping(fields=())
    return TableMapping(
        fields=base.fields + fields,
        event=event or base.event,
        type=call_type or base.type,
    )


def generate(
    out: Annotated[Path, typer.Option("--out", help="Parquet file to write.")],
    customers: Annotated[int, typer.Option(min=1, help="Customers to generate.")] = 5000,
    months: Annotated[int, typer.Option(min=1, max=120, help="Months of history.")] = 12,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
    as_json: JsonOption = False,
) -> None:
    """Write a seeded synthetic event stream (Segment shape) and its latent truth to Parquet."""
    with _progress("generating customers") as bar:
        task = bar.add_task("generate", total=customers)
        summary = write_events_parquet(
            out,
            customers=customers,
            months=months,
            seed=seed,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    if as_json:
        print_json(summary.__dict__)
    else:
        console.print(
            f"wrote {summary.events:,} events of {summary.customers:,} customers to {out}"
        )


def demo(
    customers: Annotated[
        int | None, typer.Option(help="Customers (default: \\[demo] customers in config, 5,000).")
    ] = None,
    months: Annotated[int | None, typer.Option(help="Months \\[default: 12].")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed \\[default: 7].")] = None,
    folder: Annotated[Path, typer.Option("--dir", help="Folder for the demo files.")] = Path(
        "demo"
    ),
    db: Annotated[
        Path | None,
        typer.Option(
            "--db",
            help="Demo database file \\[default: DIR/troth.duckdb]; TROTH_DB is not read here.",
            show_default=False,
        ),
    ] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Generate a sample population into a fresh demo database and summarise it."""
    settings = settings_for(config)
    customers = customers or settings.demo.customers
    months = months or settings.demo.months
    seed = settings.demo.seed if seed is None else seed
    folder.mkdir(parents=True, exist_ok=True)
    events_path = folder / "events.parquet"
    db_path = db or folder / "troth.duckdb"
    _remove_old_demo(db_path, config)
    started = time.perf_counter()
    with _progress("generating customers") as bar:
        task = bar.add_task("generate", total=customers)
        write_events_parquet(
            events_path,
            customers=customers,
            months=months,
            seed=seed,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    with open_engine(db_path, config) as engine:
        with _progress("importing events") as bar:
            task = bar.add_task("import", total=None)
            imported = engine.import_file(
                events_path, progress=lambda d, t: bar.update(task, completed=d, total=t)
            )
        engine.mark_demo()
        summary = engine.summary()
        # Score as of the end of the generated period, not today, so the sample reads as live.
        end = datetime.fromisoformat(summary["last_event"]) + timedelta(seconds=1)
        scored = engine.score(end)
        distribution = engine.stage_distribution()
        movers = engine.movers()
        examples = engine.examples()
        top_value = engine.top_value("cev", 5)
        at_risk = engine.at_risk(5)
        report_path = folder / "troth-report.html"
        write_report(engine, report_path)
    elapsed = time.perf_counter() - started
    stages = {**scored.__dict__, "as_of": scored.as_of.isoformat()}
    if as_json:
        print_json(
            {
                "database": str(db_path),
                "report": str(report_path),
                "import": imported.__dict__,
                **summary,
                "stages": stages,
                "by_phase": distribution["by_phase"],
                "movers": movers,
                "examples": examples,
                "top_cev": top_value,
                "at_risk": at_risk,
            }
        )
        return
    _print_summary(summary, imported.rejected, elapsed)
    console.print(f"\n[bold]Engagement cycle[/] as of {scored.as_of:%Y-%m-%d}")
    if scored.withheld:
        console.print(
            f"{scored.customers:,} customers scored; {scored.withheld:,} withheld for lack of "
            "consent (analytics or profiling), in no count below"
        )
    print_distribution(stages)
    console.print(
        "phases: " + ", ".join(f"{phase} {n:,}" for phase, n in distribution["by_phase"].items())
    )
    _print_movers(movers)
    _print_examples(examples)
    value = scored.value or {}
    console.print(
        f"\n[bold]Customer value[/] ({value.get('purchase_model')} + Gamma-Gamma): "
        f"CLV {value.get('total_clv', 0):,.0f}, CEV {value.get('total_cev', 0):,.0f} "
        f"over {value.get('buyers', 0):,} buyers; {value.get('at_risk', 0):,} at risk"
    )
    render_top(top_value)
    render_at_risk(at_risk)
    console.print(f"\ndemo database: [bold]{db_path}[/]")
    example = (summary["example_user_ids"] or ["<id>"])[0]
    console.print(f"try: troth customers show {example} --db {db_path}")
    console.print(f"     troth value --db {db_path}")
    console.print(f"     troth serve --db {db_path}")
    console.print(f"\nreport (opens offline): [bold]{report_path}[/]")
    console.print(
        f"dashboard: troth serve --db {db_path}, then open http://127.0.0.1:8000/ and sign in "
        f"with a token from: troth keys create --role analyst --db {db_path}"
    )


def _print_movers(movers: dict[str, list[dict]]) -> None:
    """Print the customers who climbed and fell the most stages in the last period."""
    table = Table("customer", "from", "to", "stages", title="Top movers in the last period")
    for move in movers["up"] + movers["down"]:
        table.add_row(
            move["customer_id"],
            move["from_stage"] or "none",
            move["to_stage"] or "none",
            f"{move['change']:+d}",
        )
    console.print(table)


def _print_examples(examples: list[dict]) -> None:
    """Print one example customer per stage with why they stand there."""
    table = Table("stage", "customer", "why", title="Example customers and their evidence")
    for example in examples:
        table.add_row(example["stage"], example["customer_id"], example["why"])
    console.print(table)


def _remove_old_demo(path: Path, config: Path | None) -> None:
    """Delete an earlier demo database at `path`; refuse to delete any other database."""
    if path.exists():
        with open_engine(path, config) as engine:
            is_demo = engine.is_demo()
        if not is_demo:
            fail(f"{path} exists and is not a demo database; choose another --db or --dir")
    for stale in (path, Path(f"{path}.wal")):
        stale.unlink(missing_ok=True)


def _print_summary(summary: dict, rejected: int, seconds: float) -> None:
    """Print the store summary as rich tables."""
    console.print(
        f"\n[bold]{summary['customers']:,} customers[/], {summary['identifiers']:,} identifiers, "
        f"{summary['events']:,} events ({summary['first_event'][:10]} → "
        f"{summary['last_event'][:10]}), {rejected} rejected, in {seconds:.1f} s"
    )
    console.print(
        f"identity: {summary['customers_anonymous_then_identified']:,} customers joined "
        f"anonymous and identified activity; {summary['identity_merges']:,} merges recorded"
    )
    names = Table("event", "count", title="Events by name")
    for name, n in summary["events_by_name"].items():
        names.add_row(name, f"{n:,}")
    channels = Table("channel", "count", title="Events by channel")
    for name, n in summary["events_by_channel"].items():
        channels.add_row(name, f"{n:,}")
    console.print(names)
    console.print(channels)
