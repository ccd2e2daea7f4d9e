"""Carrying out an erasure plan: every row about a person deleted, every mention of them scrubbed.

`troth.privacy.erasure` works out whom to erase (ids, identifier nodes, every string that names
them) and hands the store an `ErasurePlan`. Tables are discovered from the catalog, so a derived
table added later is covered without a change here: rows whose `customer_id` (or a column ending
in `_customer_id`, or a `user_id` / `anonymous_id` / `previous_id` column) names the person are
deleted; then every text and JSON column of every table is searched for the person's
identifiers, and each mention left (another customer's referral naming them, a free-text field)
is replaced by `[erased]`. All of it is one transaction.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import duckdb
import msgspec

from troth.errors import StoreError
from troth.store.tombstones import forget_tombstones

if TYPE_CHECKING:
    from troth.store.database import Database

__all__ = ["ERASED", "ErasurePlan", "execute_erasure", "mention_pattern", "scrub_text"]

ERASED = "[erased]"
# Characters that continue an identifier: a mention must not be part of a longer one
# ("u1" is not mentioned in "u10"). A dot is not one, so a sentence may end after an email.
_ID_CHARS = r"A-Za-z0-9_@+\x2d"
# Shorter identifiers would match ordinary words and numbers everywhere; they are still deleted
# wherever they stand in an identifier column.
MIN_MENTION = 3
# Tables holding no personal data by construction (hashes, keys, the schema's own history).
_UNSWEPT = frozenset({"tombstones", "secrets", "api_tokens", "sources", "schema_migrations"})
_TEXT_TYPES = ("VARCHAR", "JSON")


@dataclass(frozen=True)
class ErasurePlan:
    """Whom to erase: their ids, identifier nodes, normalised traits and every mention."""

    customer_ids: tuple[str, ...]  # the customer's id and the ids merged into it
    nodes: tuple[str, ...]  # identity graph nodes, `kind:value`
    user_ids: tuple[str, ...]
    anonymous_ids: tuple[str, ...]
    emails: tuple[str, ...]  # trimmed, lower-cased
    phones: tuple[str, ...]  # digits and a leading +
    mentions: tuple[str, ...]  # every string that names them, as written
    audit_id: str  # the keyed hash that replaces their customer id in the audit log
    tombstones: tuple[str, ...]  # keyed hashes of their nodes
    forget_files: tuple[str, ...] = ()  # written_files rows to drop (deleted or gone files)


def _escape(text: str) -> str:
    """Return `text` as a regular expression both RE2 (DuckDB) and Python's re read literally."""
    return "".join(ch if ch.isalnum() or ord(ch) > 127 else f"\\x{ord(ch):02x}" for ch in text)


def mention_pattern(mentions: Sequence[str]) -> str | None:
    """Return a case-insensitive regex matching any mention standing on its own, or None.

    Group 1 and 3 are the characters around the mention, kept by replacements.
    """
    usable = sorted({m for m in mentions if len(m) >= MIN_MENTION}, key=len, reverse=True)
    if not usable:
        return None
    alternatives = "|".join(_escape(m) for m in usable)
    return f"(?i)(^|[^{_ID_CHARS}])({alternatives})($|[^{_ID_CHARS}])"


def scrub_text(pattern: re.Pattern[str], text: str) -> str:
    """Return `text` with every mention replaced by [erased] (overlapping ones too)."""
    while True:
        scrubbed = pattern.sub(lambda m: m.group(1) + ERASED + m.group(3), text)
        if scrubbed == text:
            return text
        text = scrubbed


def _scrub_json(pattern: re.Pattern[str], mentions: frozenset[str], value: Any) -> Any:
    """Return a decoded JSON value with mentions replaced in keys, strings and equal numbers."""
    if isinstance(value, dict):
        return {scrub_text(pattern, k): _scrub_json(pattern, mentions, v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub_json(pattern, mentions, v) for v in value]
    if isinstance(value, str):
        return scrub_text(pattern, value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return ERASED if str(value).lower() in mentions else value
    return value


def _temp_list(cur: duckdb.DuckDBPyConnection, name: str, values: Sequence[str]) -> str:
    """Store `values` as one-column temp table `name` (column v); return a subquery over it."""
    cur.execute(
        f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT unnest(?::VARCHAR[]) AS v",
        [list(values)],
    )
    return f"(SELECT v FROM {name})"


def _text_columns(cur: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[str, str]]]:
    """Return every stored table's text and JSON columns: {table: [(column, type)]}."""
    rows = cur.execute(
        "SELECT c.table_name, c.column_name, c.data_type FROM information_schema.columns c "
        "JOIN information_schema.tables t ON t.table_name = c.table_name "
        "AND t.table_schema = c.table_schema AND t.table_catalog = c.table_catalog "
        "WHERE c.table_schema = 'main' AND t.table_type = 'BASE TABLE' "
        "AND c.table_catalog = current_database() ORDER BY c.table_name, c.ordinal_position"
    ).fetchall()
    columns: dict[str, list[tuple[str, str]]] = {}
    for table, column, data_type in rows:
        columns.setdefault(table, []).append((column, data_type))
    return columns


def _count(cur: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> int:
    row = cur.execute(sql, params or []).fetchone()
    return int(row[0]) if row else 0


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _delete_rows(
    cur: duckdb.DuckDBPyConnection, plan: ErasurePlan, columns: dict[str, list[tuple[str, str]]]
) -> dict[str, int]:
    """Delete every row that belongs to the person; return the count per table."""
    ids = _temp_list(cur, "__erase_customers", plan.customer_ids)
    users = _temp_list(cur, "__erase_users", plan.user_ids)
    anons = _temp_list(cur, "__erase_anons", plan.anonymous_ids)
    either = _temp_list(cur, "__erase_either", (*plan.user_ids, *plan.anonymous_ids))
    nodes = _temp_list(cur, "__erase_nodes", plan.nodes)
    emails = _temp_list(cur, "__erase_emails", plan.emails)
    phones = _temp_list(cur, "__erase_phones", plan.phones)
    removed: dict[str, int] = {}

    def trait(name: str) -> str:
        return (
            f"lower(trim(coalesce(json_extract_string(traits, '$.{name}'), "
            f"json_extract_string(context, '$.traits.{name}'))))"
        )

    # Their events, and any event whose traits give their email or phone.
    removed["events"] = _count(
        cur,
        f"DELETE FROM events WHERE user_id IN {users} OR anonymous_id IN {anons} "
        f"OR previous_id IN {either} OR {trait('email')} IN {emails} "
        f"OR regexp_replace({trait('phone')}, '[^0-9+]', '', 'g') IN {phones}",
    )
    removed["identity_links"] = _count(
        cur, f"DELETE FROM identity_links WHERE a IN {nodes} OR b IN {nodes}"
    )
    removed["identifiers"] = _count(cur, f"DELETE FROM identifiers WHERE node IN {nodes}")
    for table, cols in columns.items():
        if table in ("events", "audit_log"):
            continue
        conditions = []
        for column, _ in cols:
            if column == "customer_id" or column.endswith("_customer_id"):
                conditions.append(f"{_q(column)} IN {ids}")
            elif column in ("user_id", "anonymous_id", "previous_id"):
                conditions.append(f"{_q(column)} IN {either}")
        if conditions:
            n = _count(cur, f"DELETE FROM {_q(table)} WHERE {' OR '.join(conditions)}")
            removed[table] = removed.get(table, 0) + n
    return removed


def _sweep(
    cur: duckdb.DuckDBPyConnection,
    plan: ErasurePlan,
    columns: dict[str, list[tuple[str, str]]],
    removed: dict[str, int],
) -> dict[str, int]:
    """Delete rejects that mention the person; scrub mentions elsewhere; return rows per table."""
    pattern = mention_pattern(plan.mentions)
    if pattern is None:
        return {}
    sql_pattern = _lit(pattern)
    compiled = re.compile(pattern)
    lowered = frozenset(m.lower() for m in plan.mentions)
    scrubbed: dict[str, int] = {}
    for table, cols in columns.items():
        text = [(c, t) for c, t in cols if t in _TEXT_TYPES]
        if table in _UNSWEPT or not text:
            continue
        matches = " OR ".join(
            f"regexp_matches(CAST({_q(c)} AS VARCHAR), {sql_pattern})" for c, _ in text
        )
        if table == "rejects":  # refused input is kept as it came: remove it whole
            n = _count(cur, f"DELETE FROM rejects WHERE {matches}")
            if n:
                removed["rejects"] = removed.get("rejects", 0) + n
            continue
        if any(c == "message_id" for c, _ in text):
            # A message id naming the person makes the row theirs; it is a key, not rewritten.
            n = _count(
                cur,
                f"DELETE FROM {_q(table)} WHERE regexp_matches(message_id, {sql_pattern})",
            )
            if n:
                removed[table] = removed.get(table, 0) + n
            text = [(c, t) for c, t in text if c != "message_id"]
            matches = " OR ".join(
                f"regexp_matches(CAST({_q(c)} AS VARCHAR), {sql_pattern})" for c, _ in text
            )
        hits = cur.execute(f"SELECT rowid FROM {_q(table)} WHERE {matches}").fetchall()
        if not hits:
            continue
        rowids = [row[0] for row in hits]
        names = ", ".join(_q(c) for c, _ in text)
        rows = cur.execute(
            f"SELECT rowid, {names} FROM {_q(table)} WHERE rowid IN (SELECT unnest(?))",
            [rowids],
        ).fetchall()
        for rowid, *values in rows:
            changed = {}
            for (column, data_type), value in zip(text, values, strict=True):
                if value is None:
                    continue
                if data_type == "JSON":
                    decoded = _scrub_json(compiled, lowered, msgspec.json.decode(value))
                    new = msgspec.json.encode(decoded).decode()
                else:
                    new = scrub_text(compiled, value)
                if new != value:
                    changed[column] = new
            if changed:
                # Only changed columns: setting an indexed one (message_id) to itself would be
                # a delete and insert of its key, which DuckDB refuses within a transaction.
                assignments = ", ".join(f"{_q(c)} = ?" for c in changed)
                cur.execute(
                    f"UPDATE {_q(table)} SET {assignments} WHERE rowid = ?",
                    [*changed.values(), rowid],
                )
                scrubbed[table] = scrubbed.get(table, 0) + 1
    return scrubbed


def execute_erasure(db: Database, plan: ErasurePlan) -> tuple[dict[str, int], dict[str, int]]:
    """Carry out `plan` in one transaction; return (rows deleted, rows scrubbed) per table."""
    cur = db.cursor()
    try:
        with db.transaction(cur):
            columns = _text_columns(cur)
            removed = _delete_rows(cur, plan, columns)
            audited = _count(
                cur,
                "UPDATE audit_log SET customer_id = ? "
                "WHERE customer_id IN (SELECT unnest(?::VARCHAR[]))",
                [plan.audit_id, list(plan.customer_ids)],
            )
            scrubbed = _sweep(cur, plan, columns, removed)
            if audited:
                scrubbed["audit_log"] = scrubbed.get("audit_log", 0) + audited
            cur.execute(
                "INSERT INTO tombstones SELECT unnest(?::VARCHAR[]), ? ON CONFLICT DO NOTHING",
                [list(plan.tombstones), datetime.now(UTC)],
            )
            if plan.forget_files:
                removed["written_files"] = _count(
                    cur,
                    "DELETE FROM written_files WHERE path IN (SELECT unnest(?::VARCHAR[]))",
                    [list(plan.forget_files)],
                )
    except duckdb.Error as exc:
        raise StoreError(f"the erasure failed and changed nothing: {exc}") from exc
    finally:
        for name in ("customers", "users", "anons", "either", "nodes", "emails", "phones"):
            cur.execute(f"DROP TABLE IF EXISTS __erase_{name}")
        cur.close()
    forget_tombstones(db)
    return {t: n for t, n in removed.items() if n}, scrubbed
