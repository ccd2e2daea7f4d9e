"""Fixtures for end-to-end tests: a database with keys, and a running server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.harness import Server, free_port, troth


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "e2e.duckdb"


@pytest.fixture
def write_key(db_path: Path) -> str:
    return json.loads(troth("keys", "create", "--source", "e2e", "--json", db=db_path).stdout)[
        "key"
    ]


@pytest.fixture
def admin_token(db_path: Path, write_key: str) -> str:
    return json.loads(troth("keys", "create", "--role", "admin", "--json", db=db_path).stdout)[
        "key"
    ]


@pytest.fixture
def server(db_path: Path, write_key: str, admin_token: str):
    srv = Server(db_path, free_port()).start()
    yield srv
    srv.stop()
