"""Shared fixtures: a fresh database and engine per test."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import settings

from troth.store import Database, open_database

# Deterministic examples (CI reproduces what a developer saw) and no per-example deadline:
# the first example pays for imports and DuckDB start-up.
settings.register_profile("troth", deadline=None, derandomize=True, max_examples=60)
settings.load_profile("troth")


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = open_database(tmp_path / "troth.duckdb")
    yield database
    database.close()


@pytest.fixture
def engine(tmp_path: Path):
    from troth.config import Settings
    from troth.engine import Engine

    eng = Engine.open(Settings(), tmp_path / "engine.duckdb")
    yield eng
    eng.close()
