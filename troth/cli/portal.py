"""`troth portal-link` and `troth consent`: links to the customer portal, consent by hand."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from troth.cli.common import (
    CLI_ACTOR,
    ConfigOption,
    DbOption,
    JsonOption,
    console,
    fail,
    open_engine,
    print_json,
)

__all__ = ["consent", "portal_link"]

_STATES = {"on": True, "off": False}


def portal_link(
    identifier: Annotated[
        str | None,
        typer.Argument(help="Any identifier: customer id, userId, anonymousId, email."),
    ] = None,
    hours: Annotated[
        int | None,
        typer.Option(
            "--hours",
            min=1,
            max=24 * 90,
            help="Hours the link stays valid (default: \\[privacy] portal_link_hours, 72).",
            show_default=False,
        ),
    ] = None,
    rotate: Annotated[
        bool,
        typer.Option("--rotate", help="Replace the signing key first: every earlier link dies."),
    ] = False,
    db: DbOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Print a signed, expiring link to a customer's portal page (or --rotate to revoke all)."""
    if identifier is None and not rotate:
        fail("give a customer (any identifier), or --rotate to invalidate every link", 2)
    with open_engine(db, config) as engine:
        if rotate:
            engine.rotate_portal_key(CLI_ACTOR)
        link = engine.portal_link(identifier, CLI_ACTOR, hours) if identifier else None
    if link is None:
        if as_json:
            print_json({"rotated": True})
        else:
            console.print("portal key rotated: every earlier link is now invalid")
        return
    if as_json:
        print_json({**link, "rotated": rotate})
        return
    if rotate:
        console.print("portal key rotated: every earlier link is now invalid")
    # Plain print: a terminal must not wrap or mark up the URL.
    print(link["url"])
    console.print(
        f"customer {link['customer_id']}, valid until {link['expires_at'][:16]} UTC",
        markup=False,
        highlight=False,
        style="dim",
    )


def consent(
    identifier: Annotated[
        str, typer.Argument(help="Any identifier: customer id, userId, anonymousId, email.")
    ],
    purpose: Annotated[
        str | None, typer.Argument(help="A purpose of \\[privacy] purposes, to set it.")
    ] = None,
    state: Annotated[str | None, typer.Argument(help="on or off.")] = None,
    reason: Annotated[
        str | None,
        typer.Option("--reason", help="Why it was changed (kept in the audit log)."),
    ] = None,
    db: DbOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a customer's consent per purpose and its history, or set one: PURPOSE on|off."""
    if purpose is not None and state not in _STATES:
        fail(f"say whether to switch '{purpose}' on or off: troth consent ID {purpose} on|off", 2)
    if purpose is None and reason is not None:
        fail("--reason goes with a change: troth consent ID PURPOSE on|off --reason TEXT", 2)
    with open_engine(db, config) as engine:
        if purpose is not None and state is not None:
            result = engine.change_consent(
                identifier, purpose, _STATES[state], source="cli", actor=CLI_ACTOR, reason=reason
            )
            if as_json:
                print_json(result)
            elif result["changed"]:
                console.print(
                    f"{purpose} switched {state} for {result['customer_id']}",
                    markup=False,
                    highlight=False,
                )
            else:
                console.print(
                    f"{purpose} was already {state} for {result['customer_id']}; nothing recorded",
                    markup=False,
                    highlight=False,
                )
            return
        shown = engine.consent(identifier, CLI_ACTOR)
    if as_json:
        print_json(shown)
        return
    _print_consent(shown)


def _print_consent(shown: dict) -> None:
    """Print the current consent per purpose, then the history of changes."""
    current = Table("purpose", "granted", "since", title=f"consent of {shown['customer_id']}")
    for purpose, now in shown["purposes"].items():
        since = "default" if now["by_default"] else now["since"][:19].replace("T", " ")
        current.add_row(purpose, "on" if now["granted"] else "off", since)
    console.print(current)
    history = Table("when (UTC)", "purpose", "granted", "source", "by", title="history")
    for change in shown["history"]:
        # Text, not markup: sources and actors hold whatever clients sent.
        history.add_row(
            change["changed_at"][:19].replace("T", " "),
            Text(change["purpose"] + ("" if change["known_purpose"] else " (unknown)")),
            "on" if change["granted"] else "off",
            Text(change["source"] or ""),
            Text(change["changed_by"] or ""),
        )
    if shown["history"]:
        console.print(history)
    else:
        console.print("no changes recorded: every purpose holds its default")
