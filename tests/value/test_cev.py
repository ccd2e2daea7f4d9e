"""CEV = CLV + CRV + CIV + CKV: each component's evidence and arithmetic, by hand (cev.py doc)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.engagement.events import add_events
from troth.config import Settings
from troth.identity.runner import resolve_identities
from troth.store import Database
from troth.value.cev import engagement_value, influence, knowledge, referrals
from troth.value.scoring import value_events

AS_OF = datetime(2026, 6, 3, 12, tzinfo=UTC)
DAY = timedelta(days=1)
SINCE = AS_OF - 365 * DAY
SETTINGS = Settings().value.model_dump()


def evidence(db: Database, rows: list[dict], default_reach: float = 50.0) -> dict[str, list]:
    """Insert `rows` (a day before AS_OF unless they say `at`); return each expression's rows.

    Customer ids are replaced by the user id owning them, so tests can name customers.
    """
    add_events(db, rows, AS_OF - DAY)
    resolve_identities(db)
    with db.session() as session:
        ids = session.table("identifiers")
        events = value_events(session.table("events"), ids, AS_OF)
        owners = session.fetch_dicts(ids.filter(ids.kind == "user_id"))
        results = {
            "referrals": session.fetch_dicts(referrals(events, ids)),
            "influence": session.fetch_dicts(influence(events, SINCE, default_reach)),
            "knowledge": session.fetch_dicts(knowledge(events, SINCE)),
        }
    user = {row["customer_id"]: row["value"] for row in owners}
    for rows_ in results.values():
        for row in rows_:
            for key in ("customer_id", "referrer_id", "referred_id"):
                if key in row:
                    row[key] = user[row[key]]
    return results


def referral(referrer: str, referred: str, at: datetime) -> dict:
    return {
        "event": "Referral Converted",
        "user": referrer,
        "at": at,
        "properties": {"referral_id": f"r-{referrer}-{referred}", "referred_user_id": referred},
    }


def seen(user: str) -> dict:
    """An event that makes `user` known (a customer) without any value evidence."""
    return {"event": "Order Completed", "user": user, "properties": {"revenue": 10}}


def customers(clv: dict[str, float]) -> pd.DataFrame:
    return pd.DataFrame({"clv": clv}).rename_axis("customer_id")


def typed(**columns: str) -> pd.DataFrame:
    """Return an empty frame with typed columns, as the store returns one."""
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in columns.items()})


def no_referrals() -> pd.DataFrame:
    return typed(referrer_id="object", referred_id="object", converted_at="datetime64[us, UTC]")


def no_influence() -> pd.DataFrame:
    return typed(
        customer_id="object", reviews="int64", shares="int64", reach="float64", net_reach="float64"
    )


def no_knowledge() -> pd.DataFrame:
    return typed(customer_id="object", adopted_ideas="int64", feedback="int64")


def value(
    clv: dict[str, float],
    referred: pd.DataFrame | None = None,
    influenced: pd.DataFrame | None = None,
    known: pd.DataFrame | None = None,
    new_customer_value: float = 0.0,
    **settings: float,
) -> pd.DataFrame:
    return engagement_value(
        customers(clv),
        no_referrals() if referred is None else referred,
        no_influence() if influenced is None else influenced,
        no_knowledge() if known is None else known,
        new_customer_value,
        {**SETTINGS, **settings},
    )


# Referrals (CRV).


def test_a_customer_referred_twice_is_credited_to_the_earliest_converted_referral(
    db: Database,
) -> None:
    rows = [
        referral("u2", "u3", AS_OF - 5 * DAY),  # stored first, converted later
        referral("u1", "u3", AS_OF - 10 * DAY),
        seen("u3"),
    ]
    (row,) = evidence(db, rows)["referrals"]
    assert (row["referrer_id"], row["referred_id"]) == ("u1", "u3")
    assert row["converted_at"] == AS_OF - 10 * DAY


def test_a_self_referral_is_ignored_and_the_next_referral_credited(db: Database) -> None:
    rows = [
        referral("u1", "u1", AS_OF - 10 * DAY),
        referral("u2", "u1", AS_OF - 5 * DAY),
    ]
    assert [(r["referrer_id"], r["referred_id"]) for r in evidence(db, rows)["referrals"]] == [
        ("u2", "u1")
    ]


def test_a_self_referral_alone_credits_nobody(db: Database) -> None:
    assert evidence(db, [referral("u1", "u1", AS_OF - DAY)])["referrals"] == []


def test_a_referred_user_id_nobody_holds_is_not_credited(db: Database) -> None:
    rows = [referral("u1", "ghost", AS_OF - DAY), referral("u1", "u2", AS_OF - DAY), seen("u2")]
    assert [r["referred_id"] for r in evidence(db, rows)["referrals"]] == ["u2"]


def test_crv_is_incrementality_times_the_referred_customers_clv() -> None:
    referred = pd.DataFrame(
        {
            "referrer_id": ["u1", "u1", "u2", "u1"],
            "referred_id": ["u3", "u4", "u5", "gone"],  # `gone` is no customer: no value
            "converted_at": pd.to_datetime(["2026-01-01"] * 4, utc=True),
        }
    )
    clv = {"u1": 10.0, "u2": 0.0, "u3": 120.0, "u4": 80.0, "u5": 40.0}
    out = value(clv, referred, referral_incrementality=0.25)
    assert out["crv"].to_dict() == {"u1": 50.0, "u2": 10.0, "u3": 0.0, "u4": 0.0, "u5": 0.0}
    assert out["referred_customers"].to_dict() == {"u1": 2, "u2": 1, "u3": 0, "u4": 0, "u5": 0}


# Influence (CIV).


def review(user: str, rating: int, reach: float | None, at: datetime | None = None) -> dict:
    properties = {"rating": rating} | ({} if reach is None else {"reach": reach})
    return {
        "event": "Review Posted",
        "user": user,
        "at": at or AS_OF - DAY,
        "properties": properties,
    }


def share(user: str, reach: float | None, at: datetime | None = None) -> dict:
    properties = {"url": "https://example.com"} | ({} if reach is None else {"reach": reach})
    return {
        "event": "Content Shared",
        "user": user,
        "at": at or AS_OF - DAY,
        "properties": properties,
    }


def test_influence_signs_reach_by_valence_and_defaults_a_missing_reach(db: Database) -> None:
    rows = [
        review("u1", 5, 100),  # +1 * 100
        review("u1", 4, 20),  # +0.5 * 20
        review("u1", 3, 40),  # 0 * 40
        review("u1", 1, 10),  # -1 * 10
        share("u1", None),  # +1 * default 30
        share("u1", 7),  # +1 * 7
    ]
    (row,) = evidence(db, rows, default_reach=30.0)["influence"]
    assert (row["reviews"], row["shares"]) == (4, 2)
    assert row["reach"] == pytest.approx(100 + 20 + 40 + 10 + 30 + 7)
    assert row["net_reach"] == pytest.approx(100 + 10 + 0 - 10 + 30 + 7)


def test_influence_counts_only_the_trailing_window(db: Database) -> None:
    rows = [
        review("u1", 5, 1000, at=SINCE - DAY),  # before the window
        share("u1", 2000, at=AS_OF + DAY),  # after the scoring date
        review("u1", 1, 10, at=SINCE + DAY),
        share("u1", 5, at=AS_OF - DAY),
    ]
    (row,) = evidence(db, rows)["influence"]
    assert (row["reviews"], row["shares"], row["reach"], row["net_reach"]) == (1, 1, 15, -5)


def test_negative_word_of_mouth_gives_a_negative_civ() -> None:
    influenced = pd.DataFrame(
        {
            "customer_id": ["u1"],
            "reviews": [3],
            "shares": [0],
            "reach": [50.0],
            "net_reach": [-30.0],
        }
    )
    out = value(
        {"u1": 100.0, "u2": 0.0},
        influenced=influenced,
        new_customer_value=500.0,
        influence_conversion=0.002,
    )
    # CIV = conversion * V_new * net_reach = 0.002 * 500 * -30.
    assert out.loc["u1", "civ"] == pytest.approx(-30.0)
    assert out.loc["u1", "cev"] == pytest.approx(70.0)
    assert out.loc["u2", "civ"] == 0.0


# Knowledge (CKV).


def idea(user: str, idea_id: str, adopted: bool | None, at: datetime | None = None) -> dict:
    properties = {"idea_id": idea_id} | ({} if adopted is None else {"adopted": adopted})
    return {
        "event": "Idea Submitted",
        "user": user,
        "at": at or AS_OF - DAY,
        "properties": properties,
    }


def test_an_adopted_idea_counts_once_and_unadopted_ideas_not_at_all(db: Database) -> None:
    rows = [
        idea("u1", "a", None, at=AS_OF - 20 * DAY),  # submitted...
        idea("u1", "a", True, at=AS_OF - 10 * DAY),  # ...adopted, said twice
        idea("u1", "a", True, at=AS_OF - 5 * DAY),
        idea("u1", "b", False),
        idea("u1", "c", None),
        idea("u1", "d", True),
        idea("u1", "e", True, at=SINCE - DAY),  # before the window
        *({"event": "Feedback Given", "user": "u1", "at": AS_OF - k * DAY} for k in (1, 2, 3)),
        {"event": "Feedback Given", "user": "u2"},
    ]
    known = {r["customer_id"]: r for r in evidence(db, rows)["knowledge"]}
    assert (known["u1"]["adopted_ideas"], known["u1"]["feedback"]) == (2, 3)
    assert (known["u2"]["adopted_ideas"], known["u2"]["feedback"]) == (0, 1)


def test_ckv_is_idea_value_per_adopted_idea_plus_feedback_value_per_feedback() -> None:
    known = pd.DataFrame({"customer_id": ["u1"], "adopted_ideas": [2], "feedback": [3]})
    out = value({"u1": 0.0, "u2": 5.0}, known=known, idea_value=250.0, feedback_value=1.5)
    assert out["ckv"].to_dict() == {"u1": 504.5, "u2": 0.0}


# CEV.


def test_cev_is_the_sum_of_its_parts() -> None:
    referred = pd.DataFrame(
        {
            "referrer_id": ["u1"],
            "referred_id": ["u2"],
            "converted_at": pd.to_datetime(["2026-01-01"], utc=True),
        }
    )
    influenced = pd.DataFrame(
        {"customer_id": ["u1"], "reviews": [1], "shares": [1], "reach": [80.0], "net_reach": [60.0]}
    )
    known = pd.DataFrame({"customer_id": ["u1"], "adopted_ideas": [1], "feedback": [4]})
    out = value(
        {"u1": 300.0, "u2": 200.0},
        referred,
        influenced,
        known,
        new_customer_value=400.0,
        referral_incrementality=0.5,
        influence_conversion=0.001,
        idea_value=250.0,
        feedback_value=1.0,
    )
    # 300 + 0.5 * 200 + 0.001 * 400 * 60 + (250 + 4).
    assert out.loc["u1", "cev"] == pytest.approx(300 + 100 + 24 + 254)
    assert out.loc["u2", "cev"] == pytest.approx(200.0)


def test_a_missing_clv_counts_as_zero() -> None:
    out = value(
        {"u1": np.nan},
        known=pd.DataFrame({"customer_id": ["u1"], "adopted_ideas": [0], "feedback": [2]}),
    )
    assert out.loc["u1", "cev"] == 2.0


@st.composite
def populations(draw: st.DrawFn) -> tuple[pd.DataFrame, ...]:
    """Draw customers with CLVs, referrals among them, influence and knowledge evidence."""
    n = draw(st.integers(1, 8))
    names = [f"c{i}" for i in range(n)]
    money = st.floats(0, 1e6, allow_nan=False)
    clv = {name: draw(money) for name in names}
    referred_ids = draw(st.lists(st.sampled_from([*names, "stranger"]), unique=True))
    referred = pd.concat(
        [
            no_referrals(),
            pd.DataFrame(
                {
                    "referrer_id": [draw(st.sampled_from(names)) for _ in referred_ids],
                    "referred_id": referred_ids,
                    "converted_at": pd.Timestamp("2026-01-01", tz="UTC"),
                }
            ),
        ]
    )
    speakers = draw(st.lists(st.sampled_from(names), unique=True))
    influenced = pd.DataFrame(
        {
            "customer_id": pd.Series(speakers, dtype="object"),
            "reviews": pd.Series([draw(st.integers(0, 20)) for _ in speakers], dtype="int64"),
            "shares": pd.Series([draw(st.integers(0, 20)) for _ in speakers], dtype="int64"),
            "reach": pd.Series([draw(st.floats(0, 1e5)) for _ in speakers], dtype="float64"),
            "net_reach": pd.Series([draw(st.floats(-1e5, 1e5)) for _ in speakers], dtype="float64"),
        }
    )
    thinkers = draw(st.lists(st.sampled_from(names), unique=True))
    known = pd.DataFrame(
        {
            "customer_id": pd.Series(thinkers, dtype="object"),
            "adopted_ideas": pd.Series([draw(st.integers(0, 5)) for _ in thinkers], dtype="int64"),
            "feedback": pd.Series([draw(st.integers(0, 50)) for _ in thinkers], dtype="int64"),
        }
    )
    return customers(clv), referred, influenced, known


@given(
    populations(),
    st.floats(0, 1e4),
    st.fixed_dictionaries(
        {
            "referral_incrementality": st.floats(0, 1),
            "influence_conversion": st.floats(0, 1),
            "idea_value": st.floats(0, 1e4),
            "feedback_value": st.floats(0, 1e3),
        }
    ),
)
def test_engagement_value_adds_up_on_any_population(
    population: tuple[pd.DataFrame, ...], new_customer_value: float, settings: dict
) -> None:
    people, referred, influenced, known = population
    out = engagement_value(
        people, referred, influenced, known, new_customer_value, {**SETTINGS, **settings}
    )
    parts = out[["clv", "crv", "civ", "ckv", "cev"]].to_numpy()
    assert np.isfinite(parts).all()
    assert list(out.index) == list(people.index)
    assert (out["crv"] >= 0).all()
    assert (out["ckv"] >= 0).all()
    np.testing.assert_allclose(
        out["cev"], out["clv"] + out["crv"] + out["civ"] + out["ckv"], rtol=1e-12
    )
    # Every referred customer's CLV is credited once, in full incrementality, to one referrer.
    credited = referred[referred["referred_id"].isin(people.index)]
    total = (
        settings["referral_incrementality"] * people["clv"].reindex(credited["referred_id"]).sum()
    )
    assert out["crv"].sum() == pytest.approx(total, rel=1e-9, abs=1e-6)
    assert out["referred_customers"].sum() == len(credited)
