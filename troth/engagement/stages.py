"""Where each customer stands in Sashi's (2012) customer engagement cycle, and why.

A stage holds when its prerequisite stage holds and every one of its requirements holds; a
requirement is met when any of its conditions is (a feature compared with a threshold). The
customer's stage is the highest stage that holds. Features come from a trailing window
(`window_days`), so evidence ages out and a lapsed customer falls back. Each condition's result
is kept as a column, so the evidence behind an assignment is read, never recomputed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir

__all__ = [
    "PHASES",
    "STAGES",
    "Condition",
    "StageRule",
    "assign_stages",
    "condition_column",
    "stage_rules",
]

STAGES = (
    "connection",
    "interaction",
    "satisfaction",
    "retention",
    "commitment",
    "advocacy",
    "engagement",
)
PHASES = {
    "connection": "relationship",
    "interaction": "relationship",
    "satisfaction": "relationship",
    "retention": "trust",
    "commitment": "trust",
    "advocacy": "loyalty",
    "engagement": "loyalty",
}


@dataclass(frozen=True)
class Condition:
    """`feature op threshold`, e.g. purchase_months >= 2; a missing value never holds."""

    feature: str
    op: str
    threshold: float

    def describe(self) -> str:
        """Return the condition as text, e.g. 'purchase_months >= 2'."""
        return f"{self.feature} {self.op} {self.threshold:g}"


@dataclass(frozen=True)
class StageRule:
    """A stage: the stage it builds on, and requirements that must all hold (each any-of)."""

    stage: str
    prerequisite: str | None
    requirements: tuple[tuple[Condition, ...], ...]


def stage_rules(t: Mapping[str, float]) -> tuple[StageRule, ...]:
    """Return the rules of every stage, lowest first, with thresholds from `t` ([stages])."""

    def c(feature: str, op: str, key: str) -> Condition:
        return Condition(feature, op, float(t[key]))

    positive = (
        c("csat_mean", ">=", "satisfied_min_csat"),
        c("nps_last", ">=", "satisfied_min_nps"),
        c("rating_mean", ">=", "satisfied_min_rating"),
    )
    attached = (
        c("nps_last", ">=", "committed_min_nps"),
        c("csat_mean", ">=", "committed_min_csat"),
        c("rating_mean", ">=", "committed_min_rating"),
    )
    no_open_complaints = (c("tickets_unresolved", "<=", "max_unresolved_tickets"),)
    return (
        StageRule("connection", None, ((c("events", ">=", "connection_min_events"),),)),
        StageRule(
            "interaction",
            "connection",
            (
                (
                    c("active_days", ">=", "interaction_min_active_days"),
                    c("two_way_interactions", ">=", "interaction_min_two_way"),
                ),
            ),
        ),
        StageRule("satisfaction", "interaction", (positive, no_open_complaints)),
        StageRule(
            "retention", "interaction", ((c("purchase_months", ">=", "retention_min_months"),),)
        ),
        StageRule("commitment", "retention", (attached, no_open_complaints)),
        StageRule(
            "advocacy",
            "satisfaction",
            (
                (
                    c("referrals_sent", ">=", "advocacy_min_referrals"),
                    c("content_shared", ">=", "advocacy_min_shares"),
                    c("reviews", ">=", "advocacy_min_reviews"),
                ),
                attached,
            ),
        ),
        StageRule(
            "engagement",
            "advocacy",
            (
                (
                    c("community_posts", ">=", "engagement_min_community"),
                    c("answers_accepted", ">=", "engagement_min_community"),
                    c("ideas_submitted", ">=", "engagement_min_community"),
                ),
            ),
        ),
    )


def condition_column(stage: str, requirement: int, condition: int) -> str:
    """Return the column name holding one condition's result."""
    return f"c_{stage}_{requirement}_{condition}"


def _holds(features: ir.Table, condition: Condition) -> ir.BooleanValue:
    value = features[condition.feature]
    compare = (
        value >= condition.threshold if condition.op == ">=" else (value <= condition.threshold)
    )
    return compare.fill_null(False)


def assign_stages(
    features: ir.Table, rules: tuple[StageRule, ...], keys: tuple[str, ...] = ("customer_id",)
) -> ir.Table:
    """Return `keys`, stage, phase, stage_rank, cognitive_loyalty and every condition."""
    conditions: dict[str, ir.BooleanValue] = {}
    holds: dict[str, ir.BooleanValue] = {}
    for rule in rules:
        stage_holds = holds[rule.prerequisite] if rule.prerequisite else ibis.literal(True)
        for r, requirement in enumerate(rule.requirements):
            met = ibis.literal(False)
            for k, condition in enumerate(requirement):
                column = condition_column(rule.stage, r, k)
                conditions[column] = _holds(features, condition)
                met = met | conditions[column]
            stage_holds = stage_holds & met
        holds[rule.stage] = stage_holds
    rank = ibis.literal(0)
    for i, stage in enumerate(STAGES, start=1):
        rank = holds[stage].ifelse(ibis.literal(i), rank)
    # Retained by repeat buying with no sign of attachment: stays for lack of a better option.
    emotional = (
        features.nps_last.notnull() | features.csat_mean.notnull() | features.rating_mean.notnull()
    )
    assigned = features.select(
        *keys,
        stage_rank=rank,
        cognitive_loyalty=holds["retention"] & ~emotional,
        **{f"holds_{stage}": holds[stage] for stage in STAGES},
        **conditions,
    )
    stage_names = ibis.cases(
        *((assigned.stage_rank == i, s) for i, s in enumerate(STAGES, start=1)), else_=None
    )
    phase_names = ibis.cases(
        *((assigned.stage_rank == i, PHASES[s]) for i, s in enumerate(STAGES, start=1)),
        else_=None,
    )
    return assigned.mutate(stage=stage_names, phase=phase_names)
