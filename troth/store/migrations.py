"""Versioned schema migrations, applied in order when a database is opened."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MIGRATIONS", "Migration"]


@dataclass(frozen=True)
class Migration:
    """One schema step: its version number, what it does, and its SQL statements."""

    version: int
    description: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "events, rejects, sources, API tokens, identity graph and customers",
        (
            "CREATE SEQUENCE event_seq START 1",
            """CREATE TABLE events (
                seq BIGINT NOT NULL DEFAULT nextval('event_seq'),
                message_id VARCHAR NOT NULL,
                type VARCHAR NOT NULL,
                event VARCHAR,
                name VARCHAR,
                user_id VARCHAR,
                anonymous_id VARCHAR,
                previous_id VARCHAR,
                group_id VARCHAR,
                timestamp TIMESTAMPTZ NOT NULL,
                original_timestamp TIMESTAMPTZ,
                sent_at TIMESTAMPTZ,
                received_at TIMESTAMPTZ NOT NULL,
                channel VARCHAR,
                source_id VARCHAR,
                properties JSON,
                traits JSON,
                context JSON,
                integrations JSON
            )""",
            # A unique index (not a constraint) so a bulk import may rebuild it in one go.
            "CREATE UNIQUE INDEX events_message_id ON events (message_id)",
            """CREATE TABLE rejects (
                rejected_at TIMESTAMPTZ NOT NULL,
                origin VARCHAR NOT NULL,
                message_id VARCHAR,
                field VARCHAR,
                reason VARCHAR NOT NULL,
                payload VARCHAR
            )""",
            """CREATE TABLE sources (
                source_id VARCHAR PRIMARY KEY,
                name VARCHAR NOT NULL,
                key_hash VARCHAR NOT NULL UNIQUE,
                key_prefix VARCHAR NOT NULL,
                created_at TIMESTAMPTZ NOT NULL,
                revoked_at TIMESTAMPTZ
            )""",
            """CREATE TABLE api_tokens (
                token_id VARCHAR PRIMARY KEY,
                role VARCHAR NOT NULL,
                token_hash VARCHAR NOT NULL UNIQUE,
                token_prefix VARCHAR NOT NULL,
                created_at TIMESTAMPTZ NOT NULL,
                revoked_at TIMESTAMPTZ
            )""",
            """CREATE TABLE identity_links (
                a VARCHAR NOT NULL,
                b VARCHAR NOT NULL,
                reason VARCHAR NOT NULL,
                message_id VARCHAR,
                linked_at TIMESTAMPTZ
            )""",
            """CREATE TABLE identifiers (
                node VARCHAR NOT NULL,
                kind VARCHAR NOT NULL,
                value VARCHAR NOT NULL,
                customer_id VARCHAR NOT NULL,
                first_seen TIMESTAMPTZ,
                last_seen TIMESTAMPTZ
            )""",
            """CREATE TABLE identity_merges (
                merged_at TIMESTAMPTZ NOT NULL,
                from_customer_id VARCHAR NOT NULL,
                into_customer_id VARCHAR NOT NULL,
                identifiers_moved BIGINT NOT NULL,
                reasons VARCHAR
            )""",
            """CREATE TABLE identity_state (
                name VARCHAR PRIMARY KEY,
                value BIGINT NOT NULL
            )""",
        ),
    ),
    Migration(
        2,
        "privacy: audit log, erasure tombstones, secrets, files Troth wrote",
        (
            """CREATE TABLE audit_log (
                logged_at TIMESTAMPTZ NOT NULL,
                actor VARCHAR NOT NULL,
                action VARCHAR NOT NULL,
                customer_id VARCHAR,
                detail VARCHAR
            )""",
            # Keyed hashes of an erased person's identifier nodes: no identifier is kept.
            """CREATE TABLE tombstones (
                node_hash VARCHAR PRIMARY KEY,
                erased_at TIMESTAMPTZ NOT NULL
            )""",
            """CREATE TABLE secrets (
                name VARCHAR PRIMARY KEY,
                value VARCHAR NOT NULL,
                created_at TIMESTAMPTZ NOT NULL
            )""",
            """CREATE TABLE written_files (
                path VARCHAR PRIMARY KEY,
                kind VARCHAR NOT NULL,
                written_at TIMESTAMPTZ NOT NULL
            )""",
        ),
    ),
)
