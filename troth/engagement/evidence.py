"""The evidence behind one customer's stage and attributes, read back from the last scoring."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from troth.engagement.attributes import ATTRIBUTES, top_drivers
from troth.engagement.ladder import RUNGS
from troth.engagement.stages import PHASES, condition_column, stage_rules
from troth.errors import TrothError
from troth.store import Database

__all__ = [
    "customer_attributes",
    "customer_card",
    "customer_rung",
    "explain_stage",
    "stage_evidence",
]


def stage_evidence(
    db: Database, customer_id: str, thresholds: Mapping[str, float]
) -> dict[str, Any] | None:
    """Return the customer's stage, phase and per-stage evidence, or None if never scored.

    Whether each condition held is the stored result of the scoring run; values are the
    window features that run used; thresholds are those of `thresholds` ([stages]).
    """
    with db.session() as session:
        try:
            stages = session.table("customer_stage")
            window = session.table("customer_window_features")
        except TrothError:
            return None
        found = session.fetch_dicts(stages.filter(stages.customer_id == customer_id))
        values = session.fetch_dicts(window.filter(window.customer_id == customer_id))
    if not found:
        return None
    row, features = found[0], (values[0] if values else {})
    evidence = []
    for rule in stage_rules(thresholds):
        requirements = []
        for r, requirement in enumerate(rule.requirements):
            conditions = [
                {
                    "condition": condition.describe(),
                    "value": _plain(features.get(condition.feature)),
                    "held": bool(row.get(condition_column(rule.stage, r, k))),
                }
                for k, condition in enumerate(requirement)
            ]
            requirements.append({"any_of": conditions, "held": any(c["held"] for c in conditions)})
        evidence.append(
            {
                "stage": rule.stage,
                "builds_on": rule.prerequisite,
                "held": bool(row.get(f"holds_{rule.stage}")),
                "requirements": requirements,
            }
        )
    stage = row.get("stage")
    return {
        "stage": stage,
        "phase": PHASES.get(stage) if stage else None,
        "cognitive_loyalty": bool(row.get("cognitive_loyalty")),
        "as_of": row["as_of"].isoformat() if row.get("as_of") else None,
        "evidence": evidence,
    }


def _plain(value: Any) -> Any:
    """Return a feature value fit for JSON (floats rounded for reading)."""
    return round(value, 3) if isinstance(value, float) else value


def explain_stage(engagement: Mapping[str, Any]) -> str:
    """Return one line of why: what holds the customer's stage, and what keeps them from the next.

    `engagement` is what `stage_evidence` returns.
    """
    by_stage = {item["stage"]: item for item in engagement["evidence"]}
    stage = engagement["stage"]
    parts = []
    if stage is not None:
        held = [
            next(c for c in requirement["any_of"] if c["held"])
            for requirement in by_stage[stage]["requirements"]
        ]
        parts.append(f"{stage} because " + " and ".join(_said(c) for c in held))
    # The next stage up whose own foundation holds: what is missing to climb.
    above = [item["stage"] for item in engagement["evidence"]].index(stage) + 1 if stage else 0
    for item in engagement["evidence"][above:]:
        builds_on_held = item["builds_on"] is None or by_stage[item["builds_on"]]["held"]
        if not item["held"] and builds_on_held:
            missing = [r for r in item["requirements"] if not r["held"]]
            alternatives = [
                " or ".join(_said(c) for c in requirement["any_of"]) for requirement in missing
            ]
            if len(alternatives) > 1:
                alternatives = [f"({a})" if " or " in a else a for a in alternatives]
            needs = " and ".join(alternatives)
            parts.append(f"not yet {item['stage']}: needs {needs}")
            break
    return "; ".join(parts) or "no activity in the evidence window"


def _said(condition: Mapping[str, Any]) -> str:
    """Return a condition with the customer's value, e.g. 'nps_last >= 9 (is 10)'."""
    value = "none" if condition["value"] is None else condition["value"]
    return f"{condition['condition']} (is {value})"


def customer_attributes(db: Database, customer_id: str) -> dict[str, Any] | None:
    """Return the four attributes (0-100) with their top drivers, or None if not scored.

    A customer scored but without activity in the evidence window has every attribute at 0.
    """
    with db.session() as session:
        try:
            scores = session.table("customer_attributes")
        except TrothError:
            return None
        found = session.fetch_dicts(scores.filter(scores.customer_id == customer_id))
    row = found[0] if found else {}
    drivers = top_drivers(row)
    return {
        attribute: {
            "score": round(float(row.get(attribute) or 0.0), 1),
            "drivers": drivers[attribute],
        }
        for attribute in ATTRIBUTES
    }


def customer_card(db: Database, customer_id: str, recent: int = 8) -> dict[str, Any] | None:
    """Return the card: balance, earned, lost, trend (points) and the `recent` latest entries.

    None if never scored; a scored customer without entries has a zero balance and no entries.
    """
    with db.session() as session:
        try:
            balances, entries = session.table("card_balance"), session.table("card_entries")
        except TrothError:
            return None
        found = session.fetch_dicts(balances.filter(balances.customer_id == customer_id))
        mine = entries.filter(entries.customer_id == customer_id)
        latest = session.fetch_dicts(
            mine.order_by([mine.timestamp.desc(), mine.rule]).limit(recent)
        )
    row = found[0] if found else {}
    return {
        **{
            key: int(row.get(key) or 0) for key in ("balance", "earned", "lost", "trend", "entries")
        },
        "recent": [
            {
                "at": entry["timestamp"].isoformat(),
                "rule": entry["rule"],
                "points": int(entry["points"]),
                "event": entry["event"],
                "reason": entry["reason"],
            }
            for entry in latest
        ],
    }


def customer_rung(db: Database, customer_id: str) -> dict[str, Any] | None:
    """Return the ladder rung reached, when each rung was first reached, channel and segment."""
    with db.session() as session:
        try:
            ladder = session.table("customer_ladder")
        except TrothError:
            return None
        found = session.fetch_dicts(ladder.filter(ladder.customer_id == customer_id))
    if not found:
        return {"rung": None, "reached": {}, "acquisition_channel": None, "segment": None}
    row = found[0]
    return {
        "rung": row["rung"],
        "reached": {
            rung: row[f"first_{rung}_at"].isoformat()
            for rung in RUNGS
            if row.get(f"first_{rung}_at") is not None
        },
        "acquisition_channel": row["acquisition_channel"],
        "segment": row["segment"],
    }
