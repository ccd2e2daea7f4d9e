"""Troth's settings: one typed model read from `troth.toml`; every key optional and defaulted."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from troth.errors import ConfigError

__all__ = [
    "DEFAULT_CONFIG_FILE",
    "CardSettings",
    "DemoSettings",
    "IdentitySettings",
    "MappingSettings",
    "PrivacySettings",
    "ServerSettings",
    "Settings",
    "StageSettings",
    "StoreSettings",
    "ValueSettings",
    "load_settings",
]

DEFAULT_CONFIG_FILE = "troth.toml"
# A local time of day, "HH:MM" on a 24-hour clock.
_HH_MM = r"^([01]\d|2[0-3]):[0-5]\d$"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StoreSettings(_Section):
    """`[store]`: where the embedded DuckDB database lives."""

    path: str = Field(
        "troth.duckdb",
        description="Path of the DuckDB database file (overridden by `--db` and `TROTH_DB`).",
    )
    threads: int | None = Field(
        None, ge=1, description="DuckDB worker threads; default: one per core."
    )
    memory_limit: str | None = Field(
        None, description="DuckDB memory limit such as '4GB'; default: 80% of RAM."
    )
    checkpoint_threshold: str = Field(
        "256MB",
        description="Write-ahead log size at which DuckDB folds it into the database file; "
        "larger means rarer write stalls but a longer replay after a crash.",
    )


class ServerSettings(_Section):
    """`[server]`: the HTTP server started by `troth serve`."""

    host: str = Field("127.0.0.1", description="Interface `troth serve` listens on.")
    port: int = Field(8000, ge=1, le=65535, description="TCP port `troth serve` listens on.")
    queue_max_events: int = Field(
        200_000,
        ge=1000,
        description="Events waiting for their commit before new requests get 429 Retry-After.",
    )
    group_commit_max_events: int = Field(
        20_000, ge=1, description="Most events written in one DuckDB transaction (group commit)."
    )
    commit_timeout_s: float = Field(
        30.0, gt=0, description="Seconds a request waits for its commit before answering 503."
    )
    retry_after_s: int = Field(1, ge=1, description="Seconds sent in `Retry-After` with a 429.")
    identity_interval_s: float = Field(
        2.0, gt=0, description="Seconds between identity resolutions while events arrive."
    )


class IdentitySettings(_Section):
    """`[identity]`: how identifiers are joined into customers."""

    merge_on: list[Literal["email", "phone"]] = Field(
        default_factory=list,
        description="Traits whose equal values merge customers (e.g. ['email']); default none.",
    )


class MappingSettings(_Section):
    """`[mapping.NAME]`: how the columns of a table map onto Segment event fields."""

    columns: dict[str, str] = Field(
        default_factory=dict,
        description="column = field, e.g. amount = 'properties.revenue:number'.",
    )
    event: str | None = Field(None, description="Event name given to every row (track calls).")
    type: Literal["track", "identify", "page", "screen", "group", "alias"] | None = Field(
        None, description="Call type of every row; default track when `event` is set."
    )


class StageSettings(_Section):
    """`[stages]`: the evidence each stage of the engagement cycle needs (README argues them)."""

    window_days: int = Field(
        180, ge=1, description="Days of activity that count as evidence; older evidence ages out."
    )
    connection_min_events: int = Field(
        1, ge=1, description="Connection: events in the window (the customer is reachable)."
    )
    interaction_min_active_days: int = Field(
        3, ge=1, description="Interaction: distinct active days in the window, or …"
    )
    interaction_min_two_way: int = Field(
        1, ge=1, description="… two-way interactions (the customer speaks, not only listens)."
    )
    satisfied_min_csat: float = Field(4.0, description="Satisfaction: mean CSAT (1-5) at least.")
    satisfied_min_nps: float = Field(
        7.0, description="Satisfaction: latest NPS answer (0-10) at least (passive or promoter)."
    )
    satisfied_min_rating: float = Field(
        4.0, description="Satisfaction: mean review rating (1-5) at least."
    )
    max_unresolved_tickets: int = Field(
        0, ge=0, description="Satisfaction and commitment: most tickets left unresolved."
    )
    retention_min_months: int = Field(
        2, ge=1, description="Retention: distinct months with a purchase in the window."
    )
    committed_min_nps: float = Field(9.0, description="Commitment: latest NPS (promoter).")
    committed_min_csat: float = Field(4.5, description="Commitment: mean CSAT at least.")
    committed_min_rating: float = Field(4.5, description="Commitment: mean rating at least.")
    advocacy_min_referrals: int = Field(1, ge=1, description="Advocacy: referrals sent, or …")
    advocacy_min_shares: int = Field(1, ge=1, description="… content shared, or …")
    advocacy_min_reviews: int = Field(2, ge=1, description="… reviews posted.")
    engagement_min_community: int = Field(
        1,
        ge=1,
        description="Engagement: community posts, accepted answers or ideas (any one kind).",
    )
    history_period: Literal["month", "week"] = Field(
        "month", description="Period of the stage history: a snapshot at the end of each."
    )
    history_periods: int = Field(
        12, ge=2, le=120, description="Periods of stage history `troth score` keeps (snapshots)."
    )


class CardSettings(_Section):
    """`[card]`: what earns and loses trust points on the engagement card (README argues them)."""

    waking_from: str = Field(
        "08:00", pattern=_HH_MM, description="Local time ('HH:MM') from which contact is welcome."
    )
    waking_until: str = Field(
        "21:00",
        pattern=_HH_MM,
        description="Local time ('HH:MM') from which contact is badly timed again (exclusive).",
    )
    contact_cap_per_week: int = Field(
        3, ge=1, description="Company contacts per customer and ISO week; each one beyond loses."
    )
    complaint_resolution_days: int = Field(
        7, ge=1, description="Days a ticket may stay open; an unresolved one then loses."
    )
    trend_days: int = Field(
        90, ge=1, description="Days over which the card's trend (recent change) is summed."
    )
    proactive_help: int = Field(
        1, ge=0, description="Earned: a service contact the customer did not have to ask for."
    )
    ticket_resolved: int = Field(1, ge=0, description="Earned: a support ticket resolved.")
    first_contact_resolution: int = Field(
        2, ge=0, description="Earned on top: the ticket resolved at the first contact."
    )
    chosen_time_callback: int = Field(
        3, ge=0, description="Earned: a call the customer asked for, within waking hours."
    )
    data_shared: int = Field(3, ge=0, description="Earned: data the customer shared willingly.")
    offer_taken: int = Field(2, ge=0, description="Earned: an order with a coupon or discount.")
    unsolicited_contact: int = Field(
        2, ge=0, description="Lost: a call nobody asked for (sales, retention, survey)."
    )
    badly_timed_contact: int = Field(
        3, ge=0, description="Lost: a contact outside the customer's local waking hours."
    )
    over_contact_cap: int = Field(
        1, ge=0, description="Lost: each contact beyond contact_cap_per_week in a week."
    )
    data_request_without_reason: int = Field(
        3, ge=0, description="Lost: personal data asked for without a reason."
    )
    spam_mark: int = Field(5, ge=0, description="Lost: an email marked as spam.")
    unsubscribe: int = Field(3, ge=0, description="Lost: an unsubscribe.")
    unresolved_complaint: int = Field(
        4, ge=0, description="Lost: a ticket still unresolved complaint_resolution_days later."
    )

    @model_validator(mode="after")
    def _waking_hours_are_a_window(self) -> CardSettings:
        if self.waking_from == self.waking_until:
            raise ValueError("waking_from and waking_until are equal; give a window of hours")
        return self


class ValueSettings(_Section):
    """`[value]`: customer lifetime value and customer engagement value (README argues them)."""

    model: Literal["bgnbd", "modified_bgnbd", "pareto_nbd"] = Field(
        "bgnbd", description="Purchase model for P(alive) and expected purchases."
    )
    period: Literal["D", "W"] = Field(
        "W", description="Time unit the purchase model counts in: 'D' days or 'W' weeks."
    )
    horizon_months: int = Field(
        12, ge=1, le=120, description="Months of future value in CLV and CEV (30-day months)."
    )
    discount_rate_monthly: float = Field(
        0.01, ge=0, le=1, description="Monthly discount rate of future value (0.01 is ~12.7%/year)."
    )
    margin: float = Field(
        1.0, gt=0, le=1, description="Share of revenue that is contribution margin (1: revenue)."
    )
    referral_incrementality: float = Field(
        1.0,
        ge=0,
        le=1,
        description="Share of referred customers who would not have joined without the referral.",
    )
    influence_conversion: float = Field(
        0.001, ge=0, description="New customers won per person reached by a review or a share."
    )
    default_reach: float = Field(
        50.0, ge=0, description="People a review or share reaches when its event has no `reach`."
    )
    idea_value: float = Field(
        250.0, ge=0, description="Value to the company of one adopted idea, in revenue currency."
    )
    feedback_value: float = Field(
        1.0, ge=0, description="Value to the company of one piece of feedback, in currency."
    )
    at_risk_p_alive: float = Field(
        0.5, gt=0, le=1, description="At risk: P(alive) below this, with a high CLV if retained."
    )
    at_risk_top_share: float = Field(
        0.2,
        gt=0,
        le=1,
        description="At risk: CLV if retained among this top share of buyers.",
    )


PURPOSES = (
    "analytics",
    "personalisation",
    "profiling",
    "marketing:email",
    "marketing:sms",
    "marketing:call",
    "marketing:push",
)


class PrivacySettings(_Section):
    """`[privacy]`: the purposes customers consent to, and the default without a record."""

    purposes: list[str] = Field(
        default_factory=lambda: list(PURPOSES),
        description="Purposes a customer can grant or withdraw (Consent Updated `purpose`).",
    )
    granted_by_default: list[str] = Field(
        default_factory=lambda: ["analytics", "personalisation", "profiling"],
        description="Purposes granted until the customer says otherwise (opt-out); the rest "
        "need the customer's explicit grant (opt-in).",
    )
    portal_link_hours: int = Field(
        72, ge=1, le=24 * 90, description="Hours a customer portal link stays valid."
    )
    portal_base_url: str = Field(
        "",
        description="Address of `troth serve` as customers reach it, used in portal links "
        "(empty: http://127.0.0.1 on the [server] port).",
    )

    @field_validator("purposes", "granted_by_default")
    @classmethod
    def _purpose_names(cls, value: list[str]) -> list[str]:
        for purpose in value:
            if not re.fullmatch(r"[a-z][a-z0-9_]*(:[a-z][a-z0-9_]*)?", purpose):
                raise ValueError(
                    f"purpose '{purpose}' must be lower-case words, optionally 'area:channel'"
                )
        return value

    @field_validator("portal_base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        if value and not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", value):
            raise ValueError(
                f"portal_base_url '{value}' must be an http:// or https:// address such as "
                "https://privacy.example.com"
            )
        return value.rstrip("/")

    @model_validator(mode="after")
    def _defaults_are_purposes(self) -> PrivacySettings:
        unknown = sorted(set(self.granted_by_default) - set(self.purposes))
        if unknown:
            raise ValueError(f"granted_by_default names unknown purposes: {', '.join(unknown)}")
        return self


class DemoSettings(_Section):
    """`[demo]`: the generated sample population used by `troth demo`."""

    customers: int = Field(5000, ge=1, description="Customers generated by `troth demo`.")
    months: int = Field(12, ge=1, le=120, description="Months of history generated.")
    seed: int = Field(7, description="Random seed; the same seed gives the same data.")


class Settings(_Section):
    """All of Troth's settings, one section per area."""

    store: StoreSettings = Field(default_factory=StoreSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    identity: IdentitySettings = Field(default_factory=IdentitySettings)
    stages: StageSettings = Field(default_factory=StageSettings)
    card: CardSettings = Field(default_factory=CardSettings)
    value: ValueSettings = Field(default_factory=ValueSettings)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)
    mapping: dict[str, MappingSettings] = Field(
        default_factory=dict, description="Named column mappings for `troth import --mapping NAME`."
    )
    demo: DemoSettings = Field(default_factory=DemoSettings)

    @field_validator("mapping")
    @classmethod
    def _mappings_have_columns(
        cls, value: dict[str, MappingSettings]
    ) -> dict[str, MappingSettings]:
        for name, mapping in value.items():
            if not mapping.columns:
                raise ValueError(f"mapping '{name}' has no columns")
        return value


def load_settings(path: Path | str | None = None) -> Settings:
    """Return the settings from `path` (default `./troth.toml` if present) plus `TROTH_DB`."""
    explicit = path is not None
    file = Path(path) if path is not None else Path(DEFAULT_CONFIG_FILE)
    data: dict = {}
    if file.exists():
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file}: not valid TOML: {exc}") from exc
    elif explicit:
        raise ConfigError(f"config file {file} does not exist")
    env_db = os.environ.get("TROTH_DB")
    if env_db:
        data.setdefault("store", {})["path"] = env_db
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"{file}: {problems}") from exc
