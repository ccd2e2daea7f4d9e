"""`troth report`: the overview as one self-contained HTML file to share."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from troth.cli.common import CLI_ACTOR, ConfigOption, DbOption, console, open_engine
from troth.dashboard import write_report


def report(
    out: Annotated[
        Path, typer.Option("--out", help="HTML file to write (replaced if it exists).")
    ] = Path("troth-report.html"),
    with_customers: Annotated[
        bool,
        typer.Option(
            "--with-customers",
            help="Also list the top-CEV, at-risk and cognitive-loyalty customers (audited).",
        ),
    ] = False,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Write the dashboard's overview as one HTML file that opens offline (aggregates only)."""
    with open_engine(db, config) as engine:
        size = write_report(engine, out, with_customers=with_customers, actor=CLI_ACTOR)
    kind = "with customer lists" if with_customers else "aggregates only"
    console.print(f"report: {escape(str(out))} ({size / 1e6:.1f} MB, {kind})", highlight=False)
