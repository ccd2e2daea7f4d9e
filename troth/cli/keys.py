"""`troth keys create|list|revoke`: write keys for sources, bearer tokens for people."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from troth.access.keys import ROLES
from troth.cli.common import (
    ConfigOption,
    DbOption,
    JsonOption,
    console,
    fail,
    open_engine,
    print_json,
)

app = typer.Typer(help="Create, list and revoke write keys and API tokens.", no_args_is_help=True)


@app.command("create")
def create(
    source: Annotated[
        str | None, typer.Option("--source", help="Create a write key for this source.")
    ] = None,
    role: Annotated[
        str | None,
        typer.Option("--role", help=f"Create a bearer token with this role: {', '.join(ROLES)}."),
    ] = None,
    db: DbOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Print a new write key (--source NAME) or bearer token (--role ROLE); it is shown once."""
    if (source is None) == (role is None):
        fail("give exactly one of --source NAME (write key) or --role ROLE (bearer token)", 2)
    if role is not None and role not in ROLES:
        fail(f"unknown role '{role}'; choose one of {', '.join(ROLES)}", 2)
    with open_engine(db, config) as engine:
        try:
            key_id, key = (
                engine.create_write_key(source) if source is not None else engine.create_token(role)
            )
        except ValueError as exc:
            fail(str(exc), 2)
    if as_json:
        print_json({"key": key, "id": key_id})
    else:
        print(key)


@app.command("list")
def list_keys(
    db: DbOption = None, config: ConfigOption = None, as_json: JsonOption = False
) -> None:
    """List write keys and tokens (ids, sources/roles, dates; never the secrets)."""
    with open_engine(db, config) as engine:
        credentials = engine.credentials()
    if as_json:
        print_json(
            [
                {
                    "id": c.id,
                    "kind": c.kind,
                    "source" if c.kind == "write_key" else "role": c.label,
                    "prefix": c.prefix,
                    "created_at": c.created_at.isoformat(),
                    "revoked_at": c.revoked_at.isoformat() if c.revoked_at else None,
                }
                for c in credentials
            ]
        )
        return
    table = Table("id", "kind", "source / role", "starts with", "created", "status")
    for c in credentials:
        table.add_row(
            c.id,
            c.kind,
            c.label,
            c.prefix + "…",
            c.created_at.strftime("%Y-%m-%d %H:%M"),
            "active" if c.active else f"revoked {c.revoked_at:%Y-%m-%d}",
        )
    console.print(table)


@app.command("revoke")
def revoke(
    key: Annotated[str, typer.Argument(help="The id (src_…/tok_…) or the key itself.")],
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Revoke a write key or token: later requests using it get 401."""
    with open_engine(db, config) as engine:
        try:
            credential = engine.revoke(key)
        except KeyError as exc:
            fail(str(exc.args[0]))
    console.print(f"revoked {credential.kind} {credential.id} ({credential.label})")
