"""What every command shares: the --db and --config options, opening the engine, errors."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from troth.config import Settings, load_settings
from troth.engine import Engine
from troth.errors import TrothError

__all__ = [
    "CLI_ACTOR",
    "ConfigOption",
    "DbOption",
    "JsonOption",
    "console",
    "err_console",
    "open_engine",
    "parse_time",
    "print_json",
]

# The actor the audit log names for whoever runs the command line.
CLI_ACTOR = "cli"

console = Console()
# Errors are not wrapped: scripts and tests match them, and terminals wrap on their own.
err_console = Console(stderr=True, soft_wrap=True)

DbOption = Annotated[
    Path | None,
    typer.Option(
        "--db",
        envvar="TROTH_DB",
        help="DuckDB database file (default: \\[store] path in troth.toml, else troth.duckdb).",
        show_default=False,
    ),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", help="Config file (default: ./troth.toml if present).", show_default=False
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def settings_for(config: Path | None) -> Settings:
    """Return the settings, exiting with a clear message when the config file is invalid."""
    try:
        return load_settings(config)
    except TrothError as exc:
        fail(str(exc))
        raise  # unreachable: fail exits


def fail(message: str, code: int = 1) -> None:
    """Print an error to stderr and exit with `code`."""
    # The message may quote what the user typed or a client sent: text, never markup.
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(code)


@contextlib.contextmanager
def open_engine(db: Path | None, config: Path | None) -> Iterator[Engine]:
    """Yield an engine over the chosen database; Troth errors become a message and exit 1."""
    settings = settings_for(config)
    try:
        engine = Engine.open(settings, db)
    except TrothError as exc:
        fail(str(exc))
    try:
        yield engine
    except TrothError as exc:
        fail(str(exc))
    finally:
        engine.close()


def parse_time(text: str, option: str) -> datetime:
    """Return an ISO date or time given to `option` in UTC (a date means its midnight UTC)."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        fail(f"{option} '{text}' is not a date such as 2026-06-30", 2)
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def print_json(value: Any) -> None:
    """Print `value` as indented JSON on stdout."""
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")
