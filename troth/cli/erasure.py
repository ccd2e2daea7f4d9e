"""`troth erase`: remove a customer from the database and every file Troth wrote."""

from __future__ import annotations

import dataclasses
from typing import Annotated

import typer

from troth.cli.common import (
    CLI_ACTOR,
    ConfigOption,
    DbOption,
    JsonOption,
    console,
    open_engine,
    print_json,
)
from troth.privacy.erasure import ErasureSummary


def erase(
    identifier: Annotated[
        str, typer.Argument(help="Any identifier: customer id, userId, anonymousId, email.")
    ],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    db: DbOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Erase a customer: every row and identifier, mentions in files; leave a tombstone."""
    if not yes:
        typer.confirm(
            f"Erase the customer holding '{identifier}' and everything held about them? "
            "This cannot be undone",
            abort=True,
        )
    with open_engine(db, config) as engine:
        summary = engine.erase(identifier, CLI_ACTOR)
    if as_json:
        print_json(dataclasses.asdict(summary))
    else:
        _render(summary)


def _render(summary: ErasureSummary) -> None:
    """Print what an erasure removed."""
    removed = sum(summary.rows_removed.values())
    console.print(
        f"erased customer {summary.customer_id}: {summary.identifiers} identifiers, "
        f"{removed:,} rows removed in {summary.seconds:.1f} s "
        f"(file rewrite {summary.rewrite_seconds:.1f} s)",
        highlight=False,
    )
    for table, count in sorted(summary.rows_removed.items()):
        console.print(f"  {table:<28} {count:>9,} removed", highlight=False)
    for table, count in sorted(summary.rows_scrubbed.items()):
        console.print(f"  {table:<28} {count:>9,} rows scrubbed of mentions", highlight=False)
    for scrubbed in summary.files_scrubbed:
        console.print(
            f"  file {scrubbed['path']}: {scrubbed['lines_removed']} lines removed",
            highlight=False,
        )
    for path in summary.files_deleted:
        console.print(f"  file {path}: deleted", highlight=False)
    console.print(
        f"{summary.tombstones} tombstones stop late events (a consent grant lifts them)",
        highlight=False,
    )
