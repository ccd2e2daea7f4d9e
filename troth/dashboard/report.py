"""The static report: the overview as one HTML file that opens offline and can be shared."""

from __future__ import annotations

import base64
import hashlib
import os
from datetime import UTC, datetime
from pathlib import Path

from troth.dashboard.overview import overview
from troth.dashboard.pages import render, static_file
from troth.engine import Engine

__all__ = ["report_html", "write_report"]

_SCRIPTS = (
    "vendor/vega.min.js",
    "vendor/vega-lite.min.js",
    "vendor/vega-embed.min.js",
    "dashboard.js",
)


def _inline(script: str) -> str:
    """Return script text safe inside <script>…</script> (a '</script' would end the element)."""
    return script.replace("</script", "<\\/script")


def _hash(script: str) -> str:
    """Return a CSP source allowing exactly this inline script."""
    digest = hashlib.sha256(script.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


def report_html(engine: Engine, *, with_customers: bool = False, top: int = 10) -> str:
    """Return the overview as one self-contained HTML page: styles, scripts, data inlined.

    Aggregates only unless `with_customers` (then also the top-CEV, at-risk and
    cognitive-loyalty lists, `top` customers each, without links).
    """
    scripts = [_inline(static_file(name).decode("utf-8")) for name in _SCRIPTS]
    # Only these scripts may run, and the page may fetch nothing: it is a file to mail.
    csp = (
        "default-src 'none'; script-src " + " ".join(_hash(s) for s in scripts) + "; "
        "style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
    )
    data = overview(engine, personal=with_customers, links=False, top=top)
    context = {
        "csp": csp,
        "css": static_file("dashboard.css").decode("utf-8"),
        "scripts": scripts,
        "written": datetime.now(UTC),
    }
    return render("report.html", o=data, report=context)


def write_report(
    engine: Engine, path: Path, *, with_customers: bool = False, actor: str = "cli"
) -> int:
    """Write the report to `path` (replacing it); return its size in bytes.

    A report with customers is a list of people leaving the system: it is audited as
    `actor`'s `customer.list` and written readable by its owner only.
    """
    html = report_html(engine, with_customers=with_customers).encode("utf-8")
    mode = 0o600 if with_customers else 0o644
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "wb") as out:
        out.write(html)
    if with_customers:
        os.chmod(path, mode)
        engine.audit(actor, "customer.list", None, f"report {path.name} with customer lists")
    return len(html)
