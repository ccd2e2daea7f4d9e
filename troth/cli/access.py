"""`troth export` and `troth audit`: a person's data as one document, and who looked at it."""

from __future__ import annotations

import sys
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

__all__ = ["audit", "export"]


def export(
    identifier: Annotated[
        str, typer.Argument(help="Any identifier: customer id, userId, anonymousId, email.")
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Write to this new file (not overwritten) instead of stdout.",
            dir_okay=False,
        ),
    ] = None,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Export everything held about a person as one JSON document (GDPR Art. 15/20)."""
    with open_engine(db, config) as engine:
        if out is None:
            engine.export(identifier, sys.stdout.buffer, CLI_ACTOR)
            sys.stdout.buffer.write(b"\n")
            sys.stdout.buffer.flush()
            return
        customer_id, size = engine.export_file(identifier, out, CLI_ACTOR)
    console.print(f"{out}  {size:,} bytes  (customer {customer_id})", markup=False, highlight=False)


def audit(
    customer: Annotated[
        str | None,
        typer.Option("--customer", help="Only entries about this person (any identifier)."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Entries to show.")] = 50,
    db: DbOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show the audit log, newest first: who read, exported or changed personal data and keys."""
    with open_engine(db, config) as engine:
        page = engine.audit_log(customer, limit=limit)
    if as_json:
        print_json(page)
        return
    table = Table(
        "when (UTC)",
        "actor",
        "action",
        "customer",
        "detail",
        title=Text(f"{page['total']:,} audit entries" + (f" about {customer}" if customer else "")),
    )
    for entry in page["entries"]:
        # Text, not markup: ids and details hold whatever clients sent, brackets included.
        table.add_row(
            entry["logged_at"][:19].replace("T", " "),
            *(Text(entry[column] or "") for column in ("actor", "action", "customer_id", "detail")),
        )
    console.print(table)
