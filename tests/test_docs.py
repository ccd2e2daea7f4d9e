"""The README documents every setting and every command (a missing entry fails the build)."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
import typer.main
from pydantic import BaseModel

from troth.cli import app
from troth.config import MappingSettings, Settings

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")


def _keys(model: type[BaseModel], prefix: str) -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys += _keys(annotation, f"{prefix}{name}.")
        elif name != "mapping":
            keys.append(f"{prefix}{name}")
    return keys


SETTINGS = _keys(Settings, "") + [f"mapping.NAME.{k}" for k in MappingSettings.model_fields]


@pytest.mark.parametrize("key", SETTINGS)
def test_every_setting_is_documented_with_a_help_text(key: str) -> None:
    section, _, name = key.rpartition(".")
    assert f"[{section.replace('.NAME', '.orders')}]" in README, f"section of {key} undocumented"
    assert f"\n{name} = " in README, f"{key} is not in the README's troth.toml"


def test_every_setting_has_a_description() -> None:
    for model in (Settings, MappingSettings):
        for sub_name, field in model.model_fields.items():
            sub = field.annotation
            fields = (
                sub.model_fields
                if isinstance(sub, type) and issubclass(sub, BaseModel)
                else {sub_name: field}
            )
            for name, inner in fields.items():
                assert inner.description, f"{sub_name}.{name} has no description"


def _commands(group: click.Group, prefix: str) -> list[tuple[str, click.Command]]:
    out = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            out += _commands(command, f"{prefix}{name} ")
        else:
            out.append((f"{prefix}{name}", command))
    return out


COMMANDS = _commands(typer.main.get_group(app), "troth ")


@pytest.mark.parametrize(("name", "command"), COMMANDS, ids=[c[0] for c in COMMANDS])
def test_every_command_and_option_is_documented(name: str, command: click.Command) -> None:
    assert f"`{name}" in README, f"{name} is not in the README"
    for param in command.params:
        for option in getattr(param, "opts", []):
            if option.startswith("--") and option not in ("--help",):
                assert option in README, f"{name} {option} is not in the README"
