"""The `troth` command: a thin layer that parses options and calls the engine."""

from __future__ import annotations

from typer import Typer

from troth.cli import (
    access,
    contacts,
    customers,
    data,
    engagement,
    keys,
    portal,
    report,
    serve,
    value,
)
from troth.cli.erasure import erase

__all__ = ["app", "main"]

app = Typer(
    name="troth",
    help="Troth: a customer engagement engine that speaks the Segment spec.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("serve")(serve.serve)
app.command("import")(data.import_command)
app.command("generate")(data.generate)
app.command("demo")(data.demo)
app.command("score")(engagement.score)
app.command("stages")(engagement.stages)
app.command("value")(value.value)
app.command("export")(access.export)
app.command("audit")(access.audit)
app.command("portal-link")(portal.portal_link)
app.command("consent")(portal.consent)
app.command("erase")(erase)
app.command("contacts")(contacts.contacts)
app.command("report")(report.report)
app.add_typer(keys.app, name="keys")
app.add_typer(customers.app, name="customers")


def main() -> None:
    """Run the `troth` command line."""
    app()
