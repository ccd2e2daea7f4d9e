"""Settings: defaults, the file, the TROTH_DB override, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from troth.config import Settings, load_settings
from troth.errors import ConfigError


def test_defaults_without_a_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TROTH_DB", raising=False)
    assert load_settings() == Settings()
    assert Settings().store.path == "troth.duckdb"


def test_file_values_and_env_override(tmp_path: Path, monkeypatch) -> None:
    config = tmp_path / "troth.toml"
    config.write_text(
        '[store]\npath = "a.duckdb"\n[identity]\nmerge_on = ["email"]\n'
        '[mapping.orders]\nevent = "Order Completed"\ncolumns = { amount = "properties.revenue" }\n'
    )
    monkeypatch.delenv("TROTH_DB", raising=False)
    settings = load_settings(config)
    assert settings.store.path == "a.duckdb"
    assert settings.identity.merge_on == ["email"]
    assert settings.mapping["orders"].event == "Order Completed"
    monkeypatch.setenv("TROTH_DB", "b.duckdb")
    assert load_settings(config).store.path == "b.duckdb"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[server]\nport = 0\n", "server.port"),
        ("[identity]\nmerge_on = ['name']\n", "identity.merge_on"),
        ("[nope]\nx = 1\n", "nope"),
        ("[store\n", "not valid TOML"),
        ("[mapping.empty]\nevent = 'X'\n", "no columns"),
    ],
)
def test_bad_settings_name_the_key(tmp_path: Path, text: str, words: str) -> None:
    config = tmp_path / "troth.toml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=words):
        load_settings(config)


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.toml")
