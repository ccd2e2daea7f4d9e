"""Identity resolution: the rules of DESIGN §3, and properties of the merge (order, idempotence)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from troth.events.schema import EVENT_SCHEMA
from troth.identity.runner import resolve_identities
from troth.store import Database, open_database

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def event(
    n: int,
    kind: str = "track",
    user: str | None = None,
    anon: str | None = None,
    previous: str | None = None,
    traits: dict | None = None,
) -> tuple:
    """Return a stored event row."""
    when = T0 + timedelta(minutes=n)
    return (
        f"m{n}",
        kind,
        "Seen" if kind == "track" else None,
        None,
        user,
        anon,
        previous,
        None,
        when,
        None,
        None,
        when,
        None,
        "test",
        None,
        None if traits is None else json.dumps(traits),
        None,
        None,
    )


def store(db: Database, rows: list[tuple]) -> None:
    columns = list(zip(*rows, strict=True))
    db.insert_events(
        pa.Table.from_arrays(
            [pa.array(c, type=f.type) for c, f in zip(columns, EVENT_SCHEMA, strict=True)],
            schema=EVENT_SCHEMA,
        )
    )


def assignment(db: Database) -> dict[str, str]:
    rows = db.connection.execute(
        "SELECT node, customer_id FROM identifiers WHERE first_seen IS NOT NULL"
    ).fetchall()
    return dict(rows)


def test_anonymous_activity_then_identify_is_one_customer(db: Database) -> None:
    store(db, [event(1, anon="a1"), event(2, anon="a1"), event(3, "identify", "u1", "a1")])
    resolve_identities(db)
    ids = assignment(db)
    assert ids["anonymous_id:a1"] == ids["user_id:u1"]
    assert len(set(ids.values())) == 1


def test_identify_arriving_in_a_later_run_merges_and_records_it(db: Database) -> None:
    store(db, [event(1, anon="a1"), event(2, user="u1")])
    resolve_identities(db)
    assert len(set(assignment(db).values())) == 2
    store(db, [event(3, "identify", "u1", "a1")])
    summary = resolve_identities(db)
    assert summary.merges == 1
    assert len(set(assignment(db).values())) == 1
    merge = db.connection.execute(
        "SELECT reasons, identifiers_moved FROM identity_merges"
    ).fetchone()
    assert merge == ("identify", 1)


def test_customer_id_prefers_the_user_id_so_it_survives_identification(db: Database) -> None:
    store(db, [event(1, user="u1")])
    resolve_identities(db)
    before = assignment(db)["user_id:u1"]
    store(db, [event(2, "identify", "u1", "a0")])
    resolve_identities(db)
    assert assignment(db)["user_id:u1"] == before


def test_alias_merges_a_previous_user_id(db: Database) -> None:
    store(
        db, [event(1, user="old"), event(2, user="new"), event(3, "alias", "new", previous="old")]
    )
    resolve_identities(db)
    ids = assignment(db)
    assert ids["user_id:old"] == ids["user_id:new"]


def test_alias_merges_a_previous_anonymous_id(db: Database) -> None:
    store(db, [event(1, anon="a9"), event(2, "alias", "u1", previous="a9")])
    resolve_identities(db)
    ids = assignment(db)
    assert ids["anonymous_id:a9"] == ids["user_id:u1"]


def test_shared_email_does_not_merge_by_default(db: Database) -> None:
    store(
        db,
        [
            event(1, "identify", "u1", traits={"email": "ann@example.com"}),
            event(2, "identify", "u2", traits={"email": "ANN@example.com "}),
        ],
    )
    resolve_identities(db)
    assert len(set(assignment(db).values())) == 2


def test_shared_email_merges_when_configured(db: Database) -> None:
    store(
        db,
        [
            event(1, "identify", "u1", traits={"email": "ann@example.com"}),
            event(2, "identify", "u2", traits={"email": "ANN@example.com "}),
        ],
    )
    resolve_identities(db, ["email"])
    ids = assignment(db)
    assert ids["user_id:u1"] == ids["user_id:u2"] == ids["email:ann@example.com"]


def test_shared_phone_merges_when_configured_whatever_the_spacing(db: Database) -> None:
    store(
        db,
        [
            event(1, "identify", "u1", traits={"phone": "+44 7700 900123"}),
            event(2, "identify", "u2", traits={"phone": "+447700900123"}),
        ],
    )
    resolve_identities(db, ["phone"])
    ids = assignment(db)
    assert ids["user_id:u1"] == ids["user_id:u2"]


def test_turning_email_merging_on_rebuilds_from_every_event(db: Database) -> None:
    store(
        db,
        [
            event(1, "identify", "u1", traits={"email": "e@x.io"}),
            event(2, "identify", "u2", traits={"email": "e@x.io"}),
        ],
    )
    resolve_identities(db)
    assert len(set(assignment(db).values())) == 2
    resolve_identities(db, ["email"])
    assert len(set(assignment(db).values())) == 1


def test_second_run_without_new_events_changes_nothing(db: Database) -> None:
    store(db, [event(1, "identify", "u1", "a1"), event(2, anon="a2")])
    resolve_identities(db)
    first = assignment(db)
    summary = resolve_identities(db)
    assert summary.events_read == 0
    assert assignment(db) == first


# Random identity graphs: events linking ids drawn from a small pool, so merges are common.
_ids = st.sampled_from([f"u{i}" for i in range(6)])
_anons = st.sampled_from([f"a{i}" for i in range(6)])
_calls = st.lists(
    st.one_of(
        st.tuples(st.just("track"), _ids | st.none(), _anons | st.none(), st.none()),
        st.tuples(st.just("identify"), _ids, _anons | st.none(), st.none()),
        st.tuples(st.just("alias"), _ids, st.none(), _ids | _anons),
    ).filter(lambda c: c[1] is not None or c[2] is not None),
    min_size=1,
    max_size=14,
)


def _rows(calls: list[tuple]) -> list[tuple]:
    return [
        event(i, kind, user, anon, previous) for i, (kind, user, anon, previous) in enumerate(calls)
    ]


def _expected_components(calls: list[tuple]) -> set[frozenset[str]]:
    """Components by a plain union-find: the oracle for the SQL label propagation."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            x = parent[x]
        return x

    for kind, user, anon, previous in calls:
        nodes = [f"user_id:{user}" if user else None, f"anonymous_id:{anon}" if anon else None]
        if kind == "alias":
            nodes += [f"user_id:{previous}", f"anonymous_id:{previous}"]
        nodes = [n for n in nodes if n]
        for n in nodes:
            find(n)
        for n in nodes[1:]:
            parent[find(n)] = find(nodes[0])
    seen = {f"user_id:{u}" for _, u, _, _ in calls if u} | {
        f"anonymous_id:{a}" for _, _, a, _ in calls if a
    }
    groups: dict[str, set[str]] = {}
    for n in seen:
        groups.setdefault(find(n), set()).add(n)
    return {frozenset(g) for g in groups.values()}


def _components(ids: dict[str, str]) -> set[frozenset[str]]:
    groups: dict[str, set[str]] = {}
    for node, customer in ids.items():
        groups.setdefault(customer, set()).add(node)
    return {frozenset(g) for g in groups.values()}


@given(_calls, st.data())
def test_resolution_matches_union_find_whatever_the_order_and_batching(calls, data) -> None:
    order = data.draw(st.permutations(range(len(calls))))
    split = data.draw(st.integers(0, len(calls)))
    rows = _rows(calls)
    whole = open_database(":memory:")
    store(whole, rows)
    resolve_identities(whole)
    expected = assignment(whole)
    assert _components(expected) == _expected_components(calls)

    pieces = open_database(":memory:")
    shuffled = [rows[i] for i in order]
    for chunk in (shuffled[:split], shuffled[split:]):
        if chunk:
            store(pieces, chunk)
            resolve_identities(pieces)
    assert assignment(pieces) == expected  # same ids: order- and batch-independent
    resolve_identities(pieces)
    assert assignment(pieces) == expected  # idempotent


def test_events_with_customer_gives_every_resolved_event_its_customer(db: Database) -> None:
    from troth.identity import events_with_customer

    store(
        db,
        [
            event(1, anon="a1"),
            event(2, "identify", "u1", "a1"),
            event(3, user="u1"),
            event(4, anon="a2"),
        ],
    )
    resolve_identities(db)
    with db.session() as session:
        joined = events_with_customer(session.table("events"), session.table("identifiers"))
        rows = session.fetch(joined.select("message_id", "customer_id").order_by("message_id"))
    ids = dict(rows)
    assert ids["m1"] == ids["m2"] == ids["m3"] != ids["m4"]


def test_the_ibis_backend_runs_analytics_over_the_store(db: Database) -> None:
    store(db, [event(1, user="u1"), event(2, user="u2")])
    con = db.ibis()
    events = con.table("events")
    assert events.count().execute() == 2
    assert "identifiers" in con.list_tables()
