"""Help texts survive rich markup: a bare [section] in a help string would vanish from --help."""

from __future__ import annotations

import re
from collections.abc import Iterator

import click
import typer

from troth.cli.app import app


def commands(command: click.Command) -> Iterator[click.Command]:
    yield command
    for sub in getattr(command, "commands", {}).values():
        yield from commands(sub)


def test_every_bracket_in_a_help_text_is_escaped() -> None:
    bare = [
        f"{command.name}: {text}"
        for command in commands(typer.main.get_command(app))
        for text in [command.help or "", *(getattr(p, "help", None) or "" for p in command.params)]
        if re.search(r"(?<!\\)\[", text)
    ]
    assert not bare


def test_the_defaults_show_in_help() -> None:
    from typer.testing import CliRunner

    shown = CliRunner().invoke(app, ["demo", "--help"], terminal_width=200).stdout
    assert "Months [default: 12]" in shown
    assert "[demo] customers in config" in shown
