"""Consent enforced as a user meets it: import, score, customers show and list, value."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.harness import troth


def orders(user: str, n: int) -> list[dict]:
    return [
        {"type": "track", "userId": user, "event": "Order Completed", "messageId": f"{user}-{i}",
         "timestamp": f"2026-0{1 + i % 8}-{10 + i % 9}T10:00:00Z",
         "properties": {"order_id": f"{user}-{i}", "revenue": 20 + 7 * i}}
        for i in range(n)
    ]  # fmt: skip


def withdraw(user: str, purpose: str) -> dict:
    return {"type": "track", "userId": user, "event": "Consent Updated",
            "messageId": f"{user}-{purpose}", "timestamp": "2026-09-01T10:00:00Z",
            "properties": {"purpose": purpose, "granted": False}}  # fmt: skip


def test_profiling_and_personalisation_withdrawals_end_to_end(
    db_path: Path, tmp_path: Path
) -> None:
    calls = [
        c
        for n, user in enumerate(("ann", "bob", "cy", "dee", "eve"))
        for c in orders(user, 3 + 2 * n)
    ]
    calls += [withdraw("eve", "profiling"), withdraw("dee", "personalisation")]
    source = tmp_path / "calls.jsonl"
    source.write_text("".join(json.dumps(c) + "\n" for c in calls))
    troth("import", str(source), db=db_path)
    scored = json.loads(troth("score", "--as-of", "2026-10-01", "--json", db=db_path).stdout)
    assert scored["customers"] == 4 and scored["withheld"] == 1
    shown = troth("customers", "show", "eve", db=db_path).stdout
    assert "withheld" in shown and "no consent: profiling" in shown
    assert (
        json.loads(troth("customers", "show", "eve", "--json", db=db_path).stdout)["engagement"]
        is None
    )
    listed = json.loads(troth("customers", "list", "--json", db=db_path).stdout)
    ids = {c["customer_id"] for c in listed["customers"]}
    eve = json.loads(troth("customers", "show", "eve", "--json", db=db_path).stdout)
    dee = json.loads(troth("customers", "show", "dee", "--json", db=db_path).stdout)
    assert eve["customer_id"] not in ids and dee["customer_id"] in ids
    assert dee["value"] is not None  # scored: only personalised lists leave dee out
    value = json.loads(troth("value", "--json", "--top", "10", db=db_path).stdout)
    top = {c["customer_id"] for c in value["top_cev"]}
    assert len(top) == 3 and dee["customer_id"] not in top and eve["customer_id"] not in top
    stages = json.loads(troth("stages", "--json", db=db_path).stdout)
    assert stages["withheld_by_reason"] == {"no consent: profiling": 1}
