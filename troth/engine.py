"""The composition root: one object that wires the store to the domain for the CLI and the API."""

from __future__ import annotations

import copy
import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from troth.access.credentials import (
    authenticate_token,
    authenticate_write_key,
    create_token,
    create_write_key,
    list_credentials,
    revoke_credential,
)
from troth.access.keys import Credential
from troth.config import Settings
from troth.engagement.distributions import attribute_histograms, card_histogram
from troth.engagement.evidence import (
    customer_attributes,
    customer_card,
    customer_rung,
    explain_stage,
    stage_evidence,
)
from troth.engagement.ladder import ladder_distribution
from troth.engagement.listing import example_customers, list_customers
from troth.engagement.scoring import ScoreSummary, score_customers, stage_distribution
from troth.engagement.timeline import customer_timeline
from troth.engagement.transitions import stage_movers, stage_transitions
from troth.errors import CustomerNotFound
from troth.identity.profile import customer_profile, find_customer
from troth.identity.runner import ResolutionSummary, identities_stale, resolve_identities
from troth.ingest.files import ImportSummary, import_file
from troth.ingest.mapping import TableMapping
from troth.privacy.audit import audit, audit_entries
from troth.privacy.consent import customer_consent, withheld_reason
from troth.privacy.contacts import contact_list, write_contact_file
from troth.privacy.erasure import ErasureSummary, erase_customer
from troth.privacy.export import write_export, write_export_file
from troth.privacy.portal import (
    apply_portal_choices,
    check_form_token,
    form_token,
    held_data,
    portal_consents,
    portal_token,
    rotate_portal_key,
    scores_withheld,
    token_expiry,
    verify_portal_token,
)
from troth.store import Database, open_database
from troth.store.summary import store_summary
from troth.value.distribution import value_histograms
from troth.value.holdout import holdout_check
from troth.value.report import (
    VALUE_SORTS,
    at_risk_customers,
    customer_value,
    top_customers,
    value_overview,
)
from troth.value.scoring import score_value

__all__ = ["Engine"]


# Remembered reads per engine (aggregates and list pages of the last scoring).
_REMEMBERED_READS = 256


class Engine:
    """Troth over one database: every operation the CLI and the HTTP API offer."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        # Reads resolve new identities first, unless a server's background loop does it: under
        # load there are always new events, and a read should not wait for a resolution.
        self.resolve_on_read = True
        # Aggregates and lists of the last scoring, kept until the next scoring or erasure:
        # only those change the derived tables, and no other process can while this one holds
        # the database. The dashboard asks for them on every page view.
        self._reads: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._reads_lock = threading.Lock()

    def _remembered(self, key: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
        """Return a copy of `compute()`'s result, computed once per scoring (LRU, 256 kept)."""
        key = (getattr(self.db, "generation", 0), *key)
        with self._reads_lock:
            if key in self._reads:
                self._reads.move_to_end(key)
                return copy.deepcopy(self._reads[key])
        value = compute()
        with self._reads_lock:
            self._reads[key] = value
            while len(self._reads) > _REMEMBERED_READS:
                self._reads.popitem(last=False)
        return copy.deepcopy(value)

    def forget_reads(self) -> None:
        """Drop every remembered read: the derived tables have changed."""
        with self._reads_lock:
            self._reads.clear()

    @classmethod
    def open(cls, settings: Settings, db_path: str | Path | None = None) -> Engine:
        """Return an engine over the database at `db_path` (default: the settings' path)."""
        path = db_path if db_path is not None else settings.store.path
        store = settings.store
        db = open_database(
            path,
            threads=store.threads,
            memory_limit=store.memory_limit,
            checkpoint_threshold=store.checkpoint_threshold,
        )
        return cls(db, settings)

    def close(self) -> None:
        """Checkpoint and close the database."""
        self.db.close()

    def resolve_identities(self) -> ResolutionSummary:
        """Bring customers up to date with the events stored so far; return what changed."""
        return resolve_identities(self.db, self.settings.identity.merge_on)

    def _resolve_before_read(self) -> None:
        """Resolve identities of new events first, unless a server's background loop does it."""
        if self.resolve_on_read and identities_stale(self.db):
            self.resolve_identities()

    def identities_stale(self) -> bool:
        """Return True when stored events have not been through identity resolution yet."""
        return identities_stale(self.db)

    def customer(self, identifier: str) -> dict[str, Any]:
        """Return the profile of the customer holding `identifier` (any of their identifiers)."""
        self._resolve_before_read()
        try:
            profile = customer_profile(self.db, identifier)
        except CustomerNotFound:
            # An identifier that arrived since the last background run: resolve now, once.
            if self.resolve_on_read or not identities_stale(self.db):
                raise
            self.resolve_identities()
            profile = customer_profile(self.db, identifier)
        thresholds = self.settings.stages.model_dump()
        profile["engagement"] = stage_evidence(self.db, profile["customer_id"], thresholds)
        profile["attributes"] = customer_attributes(self.db, profile["customer_id"])
        profile["card"] = customer_card(self.db, profile["customer_id"])
        profile["ladder"] = customer_rung(self.db, profile["customer_id"])
        profile["timeline"] = customer_timeline(self.db, profile["customer_id"])
        profile["value"] = customer_value(self.db, profile["customer_id"])
        privacy = self.settings.privacy
        profile["withheld"] = withheld_reason(self.db, profile["customer_id"])
        profile["consent"] = customer_consent(
            self.db, profile["customer_id"], privacy.purposes, privacy.granted_by_default
        )["purposes"]
        return profile

    def import_file(
        self,
        path: Path,
        mapping: TableMapping | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> ImportSummary:
        """Import a CSV, JSONL or Parquet file, then resolve identities; return the counts."""
        summary = import_file(self.db, path, mapping=mapping, progress=progress)
        self.resolve_identities()
        return summary

    def score(
        self, as_of: datetime | None = None, progress: Callable[[str], None] | None = None
    ) -> ScoreSummary:
        """Resolve identities, then write features and stages as of `as_of` (default: now)."""
        if identities_stale(self.db):
            self.resolve_identities()
        when = as_of or datetime.now(UTC)
        stages = score_customers(
            self.db,
            when,
            self.settings.stages.model_dump(),
            self.settings.card.model_dump(),
            progress,
            self.settings.privacy.model_dump(),
        )
        value = score_value(self.db, when, self.settings.value.model_dump(), progress)
        self.forget_reads()
        return dataclasses.replace(stages, value=dataclasses.asdict(value))

    def stage_distribution(self) -> dict[str, Any]:
        """Return the last scoring's customers by stage and by phase (raise if never scored)."""
        return self._remembered(("stages",), lambda: stage_distribution(self.db))

    def transitions(self) -> dict[str, Any]:
        """Return stage transition matrices, inflow/outflow and cohort flows per period."""
        return self._remembered(("transitions",), lambda: stage_transitions(self.db))

    def ladder(self) -> dict[str, Any]:
        """Return the ladder: customers per rung and conversion, overall, by segment, by channel."""
        return self._remembered(("ladder",), lambda: ladder_distribution(self.db))

    def movers(self, limit: int = 5) -> dict[str, list[dict[str, Any]]]:
        """Return the customers who climbed and fell the most stages in the last period."""
        return self._remembered(("movers", limit), lambda: stage_movers(self.db, limit))

    def examples(self, per_stage: int = 1) -> list[dict[str, Any]]:
        """Return the most active customers of each stage with one line of why they stand there."""
        thresholds = self.settings.stages.model_dump()
        examples = example_customers(self.db, per_stage)
        for example in examples:
            evidence = stage_evidence(self.db, example["customer_id"], thresholds)
            example["why"] = explain_stage(evidence) if evidence else ""
        return examples

    def customers(self, **filters: Any) -> dict[str, Any]:
        """Return one page of customers filtered as list_customers allows (stage, rung, last
        move, at risk, ranges …), sorted."""
        key = ("customers", repr(sorted(filters.items())))
        return self._remembered(
            key, lambda: list_customers(self.db, extra=("customer_value", VALUE_SORTS), **filters)
        )

    def distributions(self) -> dict[str, Any]:
        """Return histograms of the last scoring: attributes, card balances, CLV and CEV."""
        return self._remembered(
            ("distributions",),
            lambda: {
                "attributes": attribute_histograms(self.db),
                "card": card_histogram(self.db),
                "value": value_histograms(self.db),
            },
        )

    def find_customer(self, identifier: str) -> str:
        """Return the customer id holding `identifier` (any identifier), or raise
        CustomerNotFound."""
        return self._current_customer_id(identifier)

    def value(self, top: int = 10) -> dict[str, Any]:
        """Return the value models' fits, the value distribution, top-CEV and at-risk lists."""
        return self._remembered(("value", top), lambda: value_overview(self.db, top))

    def top_value(self, by: str = "cev", limit: int = 10) -> list[dict[str, Any]]:
        """Return the customers with the highest CEV (or CLV), with its components (currency)."""
        return self._remembered(("top", by, limit), lambda: top_customers(self.db, by, limit))

    def at_risk(self, limit: int = 10) -> list[dict[str, Any]]:
        """Return the at-risk customers: low P(alive), high CLV if alive; most at stake first."""
        return self._remembered(("at_risk", limit), lambda: at_risk_customers(self.db, limit))

    def holdout(
        self,
        calibration_end: datetime,
        observation_end: datetime | None = None,
        model: str | None = None,
    ) -> dict[str, Any]:
        """Fit on orders to `calibration_end`; return predicted vs actual purchases after it.

        The holdout ends at `observation_end`, by default the last stored order.
        """
        if identities_stale(self.db):
            self.resolve_identities()
        value = self.settings.value
        return holdout_check(
            self.db,
            calibration_end,
            observation_end,
            model or value.model,
            value.period,
            self.settings.privacy.model_dump(),
        )

    def summary(self) -> dict[str, Any]:
        """Return store-wide counts: customers, events by name and channel, identity merges."""
        self._resolve_before_read()
        return store_summary(self.db)

    def mark_demo(self) -> None:
        """Mark this database as generated by `troth demo`, which may replace it later."""
        with self.db.session() as session:
            session.write_state("demo_database", 1)

    def is_demo(self) -> bool:
        """Return True if `troth demo` made this database."""
        with self.db.session() as session:
            return session.read_state("demo_database") == 1

    def create_write_key(self, source: str, actor: str = "cli") -> tuple[str, str]:
        """Create a write key for a source (audited as `actor`'s); return (source id, key)."""
        source_id, key = create_write_key(self.db, source)
        audit(self.db, actor, "key.create", None, f"write key {source_id} for source {source}")
        return source_id, key

    def create_token(self, role: str, actor: str = "cli") -> tuple[str, str]:
        """Create a bearer token with a role (audited as `actor`'s); return (token id, token)."""
        token_id, token = create_token(self.db, role)
        audit(self.db, actor, "key.create", None, f"token {token_id} with role {role}")
        return token_id, token

    def credentials(self) -> list[Credential]:
        """Return every write key and token (without secrets)."""
        return list_credentials(self.db)

    def revoke(self, key_or_id: str, actor: str = "cli") -> Credential:
        """Revoke a write key or token by id or value (audited as `actor`'s); return it."""
        credential = revoke_credential(self.db, key_or_id)
        audit(self.db, actor, "key.revoke", None, f"{credential.kind} {credential.id}")
        return credential

    def source_for_write_key(self, key: str | None) -> str:
        """Return the source id of a write key, or raise AuthenticationError."""
        return authenticate_write_key(self.db, key)

    def principal_for_token(self, token: str | None) -> tuple[str, str]:
        """Return (token id, role) of a bearer token, or raise AuthenticationError."""
        return authenticate_token(self.db, token)

    def export(self, identifier: str, out: BinaryIO, actor: str) -> tuple[str, int]:
        """Write everything held about a person as JSON to `out`; return (customer id, bytes).

        The export is recorded in the audit log as `actor`'s.
        """
        self._resolve_before_read()
        customer_id, size = write_export(self.db, identifier, out, self.settings.privacy)
        audit(self.db, actor, "customer.export", customer_id, f"{size} bytes")
        return customer_id, size

    def export_file(self, identifier: str, path: Path, actor: str) -> tuple[str, int]:
        """Write a person's export to a new file at `path`; return (customer id, bytes)."""
        self._resolve_before_read()
        customer_id, size = write_export_file(self.db, identifier, path, self.settings.privacy)
        audit(self.db, actor, "customer.export", customer_id, f"file {path.name}, {size} bytes")
        return customer_id, size

    def contacts(
        self,
        channel: str,
        actor: str,
        stage: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> dict[str, Any]:
        """Return one page of who may be contacted on `channel` now: total and rows."""
        self._resolve_before_read()
        privacy = self.settings.privacy
        with self.db.session() as session:
            listed = contact_list(
                session, channel, privacy.purposes, privacy.granted_by_default, stage
            )
            total = int(session.scalar(listed.count()))
            rows = session.fetch_dicts(listed.limit(limit, offset=offset))
        detail = f"{channel}: {len(rows)} of {total}" + (f" at stage {stage}" if stage else "")
        audit(self.db, actor, "contacts.export", None, detail)
        return {
            "channel": channel,
            "purpose": f"marketing:{channel}",
            "total": total,
            "contacts": rows,
        }

    def contacts_file(self, channel: str, path: Path, actor: str, stage: str | None = None) -> int:
        """Write the contact list of `channel` to a new CSV file; return its rows."""
        self._resolve_before_read()
        privacy = self.settings.privacy
        rows = write_contact_file(
            self.db, channel, path, privacy.purposes, privacy.granted_by_default, stage
        )
        audit(self.db, actor, "contacts.export", None, f"{channel}: {rows} rows to {path.name}")
        return rows

    def audit(
        self, actor: str, action: str, customer_id: str | None = None, detail: str | None = None
    ) -> None:
        """Record in the audit log that `actor` did `action` (about `customer_id`)."""
        audit(self.db, actor, action, customer_id, detail)

    def audit_log(
        self, customer: str | None = None, limit: int = 100, offset: int = 0
    ) -> dict[str, Any]:
        """Return {"total", "entries"} of the audit log, newest first, optionally of one person.

        `customer` is any identifier of a current customer, or a customer id as logged (an
        erased person's entries keep only a hash of their id).
        """
        customer_id = customer
        if customer is not None:
            try:
                customer_id = find_customer(self.db, customer)
            except CustomerNotFound:
                customer_id = customer
        return audit_entries(self.db, customer_id, limit, offset)

    def erase(self, identifier: str, actor: str) -> ErasureSummary:
        """Erase the customer holding `identifier` from the database and files; return counts.

        The database file is rewritten and reopened: no other thread may use it meanwhile.
        """
        if identities_stale(self.db):
            self.resolve_identities()
        try:
            return erase_customer(self.db, identifier, actor)
        finally:
            self.forget_reads()

    # The customer portal and consent changes made for the customer (troth.privacy.portal).

    def _current_customer_id(self, identifier: str) -> str:
        """Return the customer id holding `identifier`, resolving new events first."""
        self._resolve_before_read()
        return find_customer(self.db, identifier)

    def portal_base_url(self, fallback: str | None = None) -> str:
        """Return where customers reach the portal: [privacy] portal_base_url, else `fallback`,
        else the local server on the [server] port."""
        configured = self.settings.privacy.portal_base_url
        local = f"http://127.0.0.1:{self.settings.server.port}"
        return (configured or fallback or local).rstrip("/")

    def portal_link(
        self, identifier: str, actor: str, hours: int | None = None, base_url: str | None = None
    ) -> dict[str, Any]:
        """Return a signed portal link for a customer: url, token, customer id, expiry (UTC).

        Valid `hours` hours (default [privacy] portal_link_hours); audited as `actor`'s.
        """
        customer_id = self._current_customer_id(identifier)
        valid = hours if hours is not None else self.settings.privacy.portal_link_hours
        token = portal_token(self.db, customer_id, valid)
        audit(self.db, actor, "portal.link", customer_id, f"valid {valid} h")
        return {
            "customer_id": customer_id,
            "url": f"{self.portal_base_url(base_url)}/portal/{token}",
            "token": token,
            "expires_at": token_expiry(token).isoformat(),
        }

    def rotate_portal_key(self, actor: str) -> None:
        """Replace the key that signs portal links: every link issued so far stops opening."""
        rotate_portal_key(self.db)
        audit(self.db, actor, "portal.rotate", None, "every earlier portal link is now invalid")

    def portal_customer(self, token: str) -> str:
        """Return the customer id a portal link opens, or raise InvalidPortalLink."""
        return verify_portal_token(self.db, token)

    def portal_form_token(self, token: str) -> str:
        """Return the form token the portal page of `token` carries (its CSRF token)."""
        return form_token(self.db, token)

    def check_portal_form(self, token: str, given: str | None) -> None:
        """Return None if `given` is the form token of `token`'s page, else raise
        InvalidPortalForm."""
        check_form_token(self.db, token, given)

    def portal_view(self, token: str) -> dict[str, Any]:
        """Return what the portal shows the customer of `token`: data held, scores, consents.

        Scores are withheld when the customer now refuses a purpose scoring needs, whatever the
        last scoring found. The view is audited (actor "customer").
        """
        customer_id = verify_portal_token(self.db, token)
        privacy = self.settings.privacy
        view = held_data(self.db, customer_id)
        view["purposes"] = portal_consents(
            self.db, customer_id, privacy.purposes, privacy.granted_by_default
        )
        view["scores"] = self._portal_scores(customer_id, view["purposes"])
        view["link_expires_at"] = token_expiry(token).isoformat()
        audit(self.db, "customer", "portal.view", customer_id)
        return view

    def _portal_scores(self, customer_id: str, purposes: list[dict[str, Any]]) -> dict[str, Any]:
        """Return the customer's latest stage, attributes and value, or why there are none."""
        withheld = scores_withheld(purposes)
        if withheld:
            return {"withheld": withheld}
        engagement = stage_evidence(self.db, customer_id, self.settings.stages.model_dump())
        if engagement is None:
            return {"withheld": None, "scored": False}
        attributes = customer_attributes(self.db, customer_id) or {}
        value = customer_value(self.db, customer_id) or {}
        return {
            "withheld": None,
            "scored": True,
            "as_of": engagement["as_of"],
            "stage": engagement["stage"],
            "phase": engagement["phase"],
            "attributes": {name: a["score"] for name, a in attributes.items()},
            "value": {
                key: value.get(key)
                for key in ("orders", "revenue", "p_alive", "clv", "cev")
                if key in value
            },
        }

    def portal_choose(self, token: str, choices: dict[str, bool]) -> list[dict[str, Any]]:
        """Record the portal customer's consent choices; return the changes (audited each)."""
        customer_id = verify_portal_token(self.db, token)
        return self._change_consent(customer_id, choices, "portal", "customer", None)

    def change_consent(
        self,
        identifier: str,
        purpose: str,
        granted: bool,
        *,
        source: str,
        actor: str,
        reason: str | None = None,
    ) -> dict[str, Any]:
        """Set a customer's consent to a purpose for them (an admin override); return the
        customer id, the change made (empty if it already held) and the consent now."""
        customer_id = self._current_customer_id(identifier)
        changes = self._change_consent(customer_id, {purpose: granted}, source, actor, reason)
        privacy = self.settings.privacy
        state = customer_consent(self.db, customer_id, privacy.purposes, privacy.granted_by_default)
        return {"customer_id": customer_id, "changed": changes, "consent": state["purposes"]}

    def _change_consent(
        self,
        customer_id: str,
        choices: dict[str, bool],
        source: str,
        actor: str,
        reason: str | None,
    ) -> list[dict[str, Any]]:
        """Record and audit the choices that change the customer's consent; return them."""
        privacy = self.settings.privacy
        changes = apply_portal_choices(
            self.db,
            customer_id,
            choices,
            privacy.purposes,
            privacy.granted_by_default,
            source=source,
            changed_by=actor,
        )
        for change in changes:
            detail = f"{change['purpose']} {'on' if change['granted'] else 'off'} ({source})"
            audit(
                self.db,
                actor,
                "consent.change",
                customer_id,
                f"{detail}: {reason}" if reason else detail,
            )
        return changes

    def consent(self, identifier: str, actor: str) -> dict[str, Any]:
        """Return a customer's consent per purpose and its history, newest first (audited)."""
        customer_id = self._current_customer_id(identifier)
        privacy = self.settings.privacy
        state = customer_consent(self.db, customer_id, privacy.purposes, privacy.granted_by_default)
        audit(self.db, actor, "customer.read", customer_id, "consent")
        return {"customer_id": customer_id, **state}
