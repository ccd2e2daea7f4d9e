"""`troth contacts`: who may be contacted for marketing on a channel, by their consent now."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from troth.cli.common import (
    CLI_ACTOR,
    ConfigOption,
    DbOption,
    JsonOption,
    console,
    open_engine,
    print_json,
)

__all__ = ["contacts"]


def contacts(
    channel: Annotated[str, typer.Argument(help="email, sms, call or push.")],
    stage: Annotated[
        str | None, typer.Option("--stage", help="Only customers at this stage (last scoring).")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write the whole list as CSV to this new file.", dir_okay=False),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Rows to show.")] = 50,
    db: DbOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """List customers who consent to marketing on CHANNEL now and have an address for it."""
    with open_engine(db, config) as engine:
        if out is not None:
            rows = engine.contacts_file(channel, out, CLI_ACTOR, stage)
            console.print(f"{out}  {rows:,} contacts", markup=False, highlight=False)
            return
        page = engine.contacts(channel, CLI_ACTOR, stage, limit=limit)
    if as_json:
        print_json(page)
        return
    table = Table(
        "customer",
        "address",
        "stage",
        title=Text(f"{page['total']:,} may be contacted by {channel} ({page['purpose']} granted)"),
    )
    for row in page["contacts"]:
        table.add_row(*(Text(row[c] or "") for c in ("customer_id", "address", "stage")))
    console.print(table)
