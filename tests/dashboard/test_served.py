"""The dashboard through a real `troth serve`: sign in with the form, browse, sign out."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.e2e.harness import Server, free_port, troth


def test_a_real_server_serves_the_dashboard_behind_sign_in(tmp_path: Path) -> None:
    troth("demo", "--customers", "200", "--months", "4", "--dir", str(tmp_path), db=None)
    db = tmp_path / "troth.duckdb"
    token = json.loads(troth("keys", "create", "--role", "analyst", "--json", db=db).stdout)["key"]
    server = Server(db, free_port()).start()
    try:
        with httpx.Client(base_url=server.url, follow_redirects=True, timeout=30) as browser:
            first = browser.get("/")
            assert first.url.path == "/signin" and 'data-testid="signin-form"' in first.text
            signed = browser.post("/signin", data={"token": token, "next": "/"})
            assert (
                signed.status_code == 200 and 'data-testid="stage-count-retention"' in signed.text
            )
            stages = browser.get("/api/v1/stages").json()  # the cookie reads the API too
            assert f'data-testid="stage-count-retention">{stages["by_stage"]["retention"]:,}<' in (
                signed.text
            )
            listed = browser.get("/customers?stage=retention")
            assert listed.status_code == 200
            browser.post("/signout")
            assert browser.get("/customers").url.path == "/signin"
    finally:
        server.stop()
