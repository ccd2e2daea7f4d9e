"""Stage rules: each criterion at its boundary, the highest stage wins, evidence ages out."""

from __future__ import annotations

import ibis
import pyarrow as pa
import pytest

from troth.config import StageSettings
from troth.engagement.stages import PHASES, STAGES, assign_stages, stage_rules

THRESHOLDS = StageSettings().model_dump()
NUMERIC = [
    "events",
    "active_days",
    "two_way_interactions",
    "csat_mean",
    "nps_last",
    "rating_mean",
    "tickets_unresolved",
    "purchase_months",
    "referrals_sent",
    "content_shared",
    "reviews",
    "community_posts",
    "answers_accepted",
    "ideas_submitted",
    "nps_mean",
]
BASE = {name: None for name in NUMERIC}


def _arrow(row: dict) -> pa.Table:
    schema = pa.schema([("customer_id", pa.string())] + [(c, pa.float64()) for c in NUMERIC])
    return pa.Table.from_pylist([row], schema=schema)


def stage_of(**features) -> dict:
    row = {"customer_id": "c1", **BASE, **features}
    table = ibis.memtable(_arrow(row))
    return assign_stages(table, stage_rules(THRESHOLDS)).to_pyarrow().to_pylist()[0]


CONNECTED = {"events": 1}
INTERACTING = {**CONNECTED, "active_days": 3}
RETAINED = {**INTERACTING, "purchase_months": 2}
SATISFIED = {**INTERACTING, "nps_last": 7, "tickets_unresolved": 0}
COMMITTED = {**RETAINED, "nps_last": 9, "tickets_unresolved": 0}
ADVOCATE = {**COMMITTED, "referrals_sent": 1}


def test_no_activity_in_the_window_means_no_stage() -> None:
    out = stage_of()
    assert out["stage"] is None and out["stage_rank"] == 0


def test_connection_needs_one_event() -> None:
    assert stage_of(**CONNECTED)["stage"] == "connection"


@pytest.mark.parametrize(
    ("days", "two_way", "stage"),
    [(2, 0, "connection"), (3, 0, "interaction"), (1, 1, "interaction")],
)
def test_interaction_needs_active_days_or_a_two_way_call(days, two_way, stage) -> None:
    assert stage_of(events=1, active_days=days, two_way_interactions=two_way)["stage"] == stage


@pytest.mark.parametrize(
    ("signal", "value", "stage"),
    [
        ("nps_last", 6, "interaction"),
        ("nps_last", 7, "satisfaction"),
        ("csat_mean", 3.9, "interaction"),
        ("csat_mean", 4, "satisfaction"),
        ("rating_mean", 4, "satisfaction"),
    ],
)
def test_satisfaction_needs_a_positive_signal(signal, value, stage) -> None:
    assert stage_of(**INTERACTING, tickets_unresolved=0, **{signal: value})["stage"] == stage


def test_an_unresolved_ticket_blocks_satisfaction() -> None:
    assert stage_of(**INTERACTING, nps_last=10, tickets_unresolved=1)["stage"] == "interaction"


@pytest.mark.parametrize(("months", "stage"), [(1, "interaction"), (2, "retention")])
def test_retention_is_repeat_buying_even_without_satisfaction_signals(months, stage) -> None:
    out = stage_of(**INTERACTING, purchase_months=months)
    assert out["stage"] == stage
    assert out["cognitive_loyalty"] == (stage == "retention")


def test_commitment_needs_retention_and_attachment() -> None:
    assert stage_of(**RETAINED, nps_last=8, tickets_unresolved=0)["stage"] == "retention"
    assert stage_of(**COMMITTED)["stage"] == "commitment"
    # Attachment without repeat buying is satisfaction, never commitment.
    assert stage_of(**INTERACTING, nps_last=10, tickets_unresolved=0)["stage"] == "satisfaction"


def test_emotional_signals_end_cognitive_loyalty() -> None:
    assert not stage_of(**RETAINED, nps_last=3)["cognitive_loyalty"]


@pytest.mark.parametrize("evidence", [{"referrals_sent": 1}, {"content_shared": 1}, {"reviews": 2}])
def test_advocacy_needs_advocacy_evidence_and_attachment(evidence) -> None:
    assert stage_of(**COMMITTED, **evidence)["stage"] == "advocacy"
    assert stage_of(**COMMITTED, reviews=1)["stage"] == "commitment"
    # Sharing without attachment is not advocacy.
    assert stage_of(**SATISFIED, **evidence)["stage"] == "satisfaction"


@pytest.mark.parametrize("community", ["community_posts", "answers_accepted", "ideas_submitted"])
def test_engagement_needs_advocacy_and_community(community) -> None:
    assert stage_of(**ADVOCATE, **{community: 1})["stage"] == "engagement"
    assert stage_of(**COMMITTED, **{community: 5})["stage"] == "commitment"


def test_phases_follow_stages() -> None:
    out = stage_of(**ADVOCATE)
    assert (out["stage"], out["phase"]) == ("advocacy", "loyalty")
    assert [PHASES[s] for s in STAGES] == ["relationship"] * 3 + ["trust"] * 2 + ["loyalty"] * 2


def test_every_condition_is_kept_as_evidence() -> None:
    out = stage_of(**RETAINED)
    assert out["c_retention_0_0"] is True
    assert out["c_commitment_0_0"] is False  # nps_last missing: the condition failed


def test_thresholds_come_from_settings() -> None:
    strict = {**THRESHOLDS, "retention_min_months": 3}
    row = {"customer_id": "c1", **BASE, **RETAINED}
    table = ibis.memtable(_arrow(row))
    out = assign_stages(table, stage_rules(strict)).to_pyarrow().to_pylist()[0]
    assert out["stage"] == "interaction"


def _evidence(stage: str | None, held: dict[str, bool], values: dict[str, float]) -> dict:
    """Build `stage_evidence`-shaped evidence from the stage rules and a verdict per condition."""
    from troth.engagement.stages import condition_column

    evidence = []
    for rule in stage_rules(THRESHOLDS):
        requirements = []
        for r, requirement in enumerate(rule.requirements):
            conditions = [
                {
                    "condition": c.describe(),
                    "value": values.get(c.feature),
                    "held": held.get(condition_column(rule.stage, r, k), False),
                }
                for k, c in enumerate(requirement)
            ]
            requirements.append({"any_of": conditions, "held": any(c["held"] for c in conditions)})
        evidence.append(
            {
                "stage": rule.stage,
                "builds_on": rule.prerequisite,
                "held": all(q["held"] for q in requirements),
                "requirements": requirements,
            }
        )
    # A stage holds only on its foundation.
    by = {e["stage"]: e for e in evidence}
    for e in evidence:
        e["held"] = e["held"] and (e["builds_on"] is None or by[e["builds_on"]]["held"])
    return {"stage": stage, "evidence": evidence}


def test_explanation_names_what_holds_and_what_is_missing_for_the_next_stage() -> None:
    from troth.engagement.evidence import explain_stage

    held = {"c_connection_0_0": True, "c_interaction_0_1": True, "c_retention_0_0": True}
    held |= {"c_commitment_1_0": False}
    values = {"events": 9, "two_way_interactions": 2, "purchase_months": 3, "nps_last": 6.0}
    line = explain_stage(_evidence("retention", held, values))
    assert line.startswith("retention because purchase_months >= 2 (is 3)")
    # Commitment is the next stage built on retention; both its requirements fail.
    assert "not yet commitment: needs (nps_last >= 9 (is 6.0) or" in line
    assert "and tickets_unresolved <= 0 (is none)" in line


def test_explanation_of_a_customer_without_a_stage() -> None:
    from troth.engagement.evidence import explain_stage

    line = explain_stage(_evidence(None, {}, {"events": 0}))
    assert line == "not yet connection: needs events >= 1 (is 0)"
