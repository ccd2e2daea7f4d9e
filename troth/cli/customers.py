"""`troth customers show`: one customer, found by any of their identifiers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from troth.cli.common import (
    CLI_ACTOR,
    ConfigOption,
    DbOption,
    JsonOption,
    console,
    open_engine,
    print_json,
)
from troth.engagement.ladder import RUNGS
from troth.engagement.listing import SORTS
from troth.engagement.transitions import MOVED_TO, STATES
from troth.value.report import VALUE_SORTS

app = typer.Typer(help="Look at customers.", no_args_is_help=True)


def _number(column: str, digits: int = 0) -> Callable[[dict[str, Any]], str]:
    """Return a cell formatter for a numeric column (blank when missing)."""
    return lambda row: "" if row[column] is None else f"{row[column]:,.{digits}f}"


# What the text view of a list shows (the JSON has every LIST_COLUMNS column), narrow enough for
# an 80-column terminal: the phase follows from the stage, "CL" marks cognitive loyalty.
_LIST_VIEW: tuple[tuple[str, Callable[[dict[str, Any]], str]], ...] = (
    ("customer", lambda row: row["customer_id"]),
    ("stage", lambda row: row["stage"] or "none"),
    ("CL", lambda row: "yes" if row["cognitive_loyalty"] else ""),
    ("days since", _number("recency_days")),
    ("orders", _number("orders")),
    ("revenue", _number("revenue")),
    ("act", _number("active")),
    ("emo", _number("emotional")),
    ("rat", _number("rational")),
    ("eth", _number("ethical")),
)


@app.command("show")
def show(
    identifier: Annotated[
        str, typer.Argument(help="Any identifier: customer id, userId, anonymousId, email.")
    ],
    db: DbOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a customer's identifiers, latest traits, activity and merge history."""
    with open_engine(db, config) as engine:
        profile = engine.customer(identifier)
        engine.audit(CLI_ACTOR, "customer.read", profile["customer_id"])
    if as_json:
        print_json(profile)
    else:
        render_profile(profile)


@app.command("list")
def list_command(
    stage: Annotated[str | None, typer.Option(help="Only customers at this stage.")] = None,
    phase: Annotated[str | None, typer.Option(help="Only customers in this phase.")] = None,
    cognitive_loyalty: Annotated[
        bool, typer.Option("--cognitive-loyalty", help="Only the cognitively loyal.")
    ] = False,
    rung: Annotated[
        str | None,
        typer.Option(help=f"Only customers who reached this rung: {', '.join(RUNGS)}."),
    ] = None,
    moved_from: Annotated[
        str | None,
        typer.Option(
            help="Only customers who moved out of this state between the last two snapshots "
            f"({', '.join(STATES)}); with --moved-to, that transition (equal: stayed)."
        ),
    ] = None,
    moved_to: Annotated[
        str | None,
        typer.Option(
            help="Only customers who moved into this state between the last two snapshots "
            f"({', '.join(MOVED_TO)})."
        ),
    ] = None,
    at_risk: Annotated[
        bool, typer.Option("--at-risk", help="Only at-risk customers (low P(alive), high value).")
    ] = False,
    sort: Annotated[
        str, typer.Option(help=f"Sort by one of: {', '.join(SORTS + VALUE_SORTS)}.")
    ] = "revenue",
    limit: Annotated[int, typer.Option(min=1, help="Customers to show.")] = 20,
    offset: Annotated[int, typer.Option(min=0, help="Customers to skip.")] = 0,
    db: DbOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """List customers from the last `troth score`, filtered and sorted."""
    with open_engine(db, config) as engine:
        page = engine.customers(
            stage=stage,
            phase=phase,
            cognitive_loyalty=cognitive_loyalty,
            rung=rung,
            moved_from=moved_from,
            moved_to=moved_to,
            at_risk=at_risk,
            sort=sort,
            limit=limit,
            offset=offset,
        )
        engine.audit(
            CLI_ACTOR,
            "customer.list",
            None,
            f"customers sort={sort}: {len(page['customers'])} rows",
        )
    if as_json:
        print_json(page)
        return
    view = _LIST_VIEW
    if sort in VALUE_SORTS:
        # The sorted value column replaces the least telling engagement one (revenue is shown).
        shown = (sort.upper(), _number(sort, 2 if sort == "p_alive" else 0))
        view = (*_LIST_VIEW[:-1], shown)
    table = Table(*(header for header, _ in view), title=f"{page['total']:,} customers match")
    for row in page["customers"]:
        table.add_row(*(show(row) for _, show in view))
    console.print(table)


def render_profile(profile: dict[str, Any]) -> None:
    """Print a customer profile as rich tables."""
    console.print(
        f"[bold]{escape(profile['customer_id'])}[/]  {profile['event_count']} events, "
        f"first seen {profile['first_seen']}, last seen {profile['last_seen']}"
    )
    ids = Table("kind", "identifier", "first seen", "last seen", title="Identifiers")
    for ident in profile["identifiers"]:
        # Identifiers, traits and event names are the sender's text: never rich markup.
        ids.add_row(
            ident["kind"],
            escape(ident["value"]),
            ident["first_seen"] or "",
            ident["last_seen"] or "",
        )
    console.print(ids)
    if profile["traits"]:
        traits = Table("trait", "latest value", title="Traits")
        for name, value in profile["traits"].items():
            traits.add_row(escape(str(name)), escape(str(value)))
        console.print(traits)
    if profile.get("withheld"):
        console.print(
            f"[bold]stage, attributes, card and value: withheld[/] ({escape(profile['withheld'])}"
            "; the customer's consent is needed to score them)"
        )
    else:
        _render_engagement(profile.get("engagement"))
        _render_attributes(profile.get("attributes"))
        _render_card(profile.get("card"), profile.get("ladder"))
        _render_value(profile.get("value"))
    _render_consent(profile.get("consent") or {})
    _render_timeline(profile.get("timeline") or [])
    counts = Table("event", "count", title="Events")
    for name, n in profile["events_by_name"].items():
        counts.add_row(escape(name), str(n))
    console.print(counts)
    if profile["merges"]:
        merges = Table("when", "from", "into", "identifiers", "because", title="Merges")
        for m in profile["merges"]:
            merges.add_row(
                m["merged_at"],
                m["from_customer_id"],
                m["into_customer_id"],
                str(m["identifiers_moved"]),
                escape(m["reasons"] or ""),
            )
        console.print(merges)


def _render_consent(consent: dict[str, Any]) -> None:
    """Print the customer's consent per purpose now, and whether it is their answer or default."""
    if not consent:
        return
    table = Table("purpose", "granted", "since", title="Consent")
    for purpose, state in consent.items():
        since = "default (no answer yet)" if state["by_default"] else state["since"]
        table.add_row(purpose, "yes" if state["granted"] else "no", since)
    console.print(table)


def _render_engagement(engagement: dict[str, Any] | None) -> None:
    """Print the stage, its phase and the evidence for every stage (held ✓ or failed ✗)."""
    if engagement is None:
        console.print("stage: not scored yet (run `troth score`)")
        return
    stage = engagement["stage"] or "none (no activity in the evidence window)"
    phase = f", phase {engagement['phase']}" if engagement["phase"] else ""
    loyal = (
        " — cognitive loyalty: retained with no emotional signal"
        if engagement["cognitive_loyalty"]
        else ""
    )
    console.print(f"[bold]stage: {stage}{phase}[/] (as of {engagement['as_of']}){loyal}")
    table = Table("stage", "held", "evidence", title="Why: the criteria of each stage")
    for item in engagement["evidence"]:
        lines = []
        for requirement in item["requirements"]:
            parts = [
                f"{'✓' if c['held'] else '✗'} {c['condition']} (is {c['value']})"
                for c in requirement["any_of"]
            ]
            lines.append(" or ".join(parts))
        builds = f"after {item['builds_on']}; " if item["builds_on"] else ""
        table.add_row(item["stage"], "yes" if item["held"] else "no", builds + "; ".join(lines))
    console.print(table)


def _render_timeline(timeline: list[dict[str, Any]]) -> None:
    """Print the latest interactions, newest first."""
    if not timeline:
        return
    table = Table("when (UTC)", "what", "channel", "by", "details", title="Latest interactions")
    for item in timeline:
        details = ", ".join(f"{k}={v}" for k, v in item["details"].items())
        table.add_row(
            item["at"][:16].replace("T", " "),
            escape(item["what"]),
            escape(item["channel"] or ""),
            item["by"],
            escape(details),
        )
    console.print(table)


def _render_attributes(attributes: dict[str, Any] | None) -> None:
    """Print the four attributes with the drivers that moved each most."""
    if attributes is None:
        return
    table = Table("attribute", "score", "top drivers (points)", title="How they engage (0-100)")
    for name, value in attributes.items():
        drivers = ", ".join(f"{d['label']} {d['contribution']:+.0f}" for d in value["drivers"])
        table.add_row(name, f"{value['score']:.0f}", drivers or "no evidence in the window")
    console.print(table)


def _render_card(card: dict[str, Any] | None, ladder: dict[str, Any] | None) -> None:
    """Print the engagement card's balance, trend and latest entries, and the ladder rung."""
    if card is None:
        return
    rung = (ladder or {}).get("rung") or "none"
    console.print(
        f"[bold]engagement card: {card['balance']:+d} points[/] (earned {card['earned']:+d}, "
        f"lost {card['lost']:+d}; {card['trend']:+d} lately) · ladder rung: {rung}"
    )
    if card["recent"]:
        table = Table("when (UTC)", "points", "why", title="Latest card entries")
        for entry in card["recent"]:
            table.add_row(
                entry["at"][:16].replace("T", " "), f"{entry['points']:+d}", entry["reason"]
            )
        console.print(table)


def _render_value(value: dict[str, Any] | None) -> None:
    """Print what the customer is worth: P(alive), expected purchases, CLV and CEV's parts."""
    if value is None:
        console.print("value: not scored yet (run `troth score`)")
        return
    if value["p_alive"] is None:
        outlook = "no orders yet: nothing to project"
    else:
        outlook = (
            f"P(alive) {value['p_alive']:.2f}, expected purchase periods: "
            f"{value['expected_purchases_90d']:.1f} in 90 days, "
            f"{value['expected_purchases_365d']:.1f} in 365 days; "
            f"expected order value {value['expected_order_value']:,.2f}"
        )
    risk = " — [bold red]at risk[/]" if value["at_risk"] else ""
    console.print(
        f"[bold]value[/] ({value['orders']:,} orders, {value['revenue']:,.2f}): {outlook}{risk}"
    )
    table = Table("part", "value", "evidence", title="Customer engagement value (CEV)")
    if_alive = value["clv_if_alive"]
    table.add_row(
        "CLV (lifetime)",
        f"{value['clv']:,.2f}",
        "next horizon's purchases"
        + ("" if if_alive is None else f"; {if_alive:,.2f} if still alive"),
    )
    table.add_row(
        "CRV (referral)", f"{value['crv']:,.2f}", f"{value['referred_customers']} customers brought"
    )
    table.add_row(
        "CIV (influence)",
        f"{value['civ']:,.2f}",
        f"{value['reviews']} reviews, {value['shares']} shares reaching {value['reach']:,.0f}"
        f" (net {value['net_reach']:,.0f})",
    )
    table.add_row(
        "CKV (knowledge)",
        f"{value['ckv']:,.2f}",
        f"{value['adopted_ideas']} ideas adopted, {value['feedback']} feedback",
    )
    table.add_row("CEV", f"{value['cev']:,.2f}", "CLV + CRV + CIV + CKV")
    console.print(table)
