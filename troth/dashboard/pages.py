"""Rendering the dashboard's pages: Jinja2 templates (autoescaped) and the page data they need."""

from __future__ import annotations

import json
from datetime import datetime
from importlib import resources
from typing import Any

from jinja2 import Environment, PackageLoader

from troth.engagement.evidence import explain_stage

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "STATIC_FILES",
    "render",
    "static_file",
    "why",
]

# Scripts only from this server (no inline script, no eval: vega runs its expression
# interpreter); vega and vega-embed set inline styles on the charts they draw.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
# What /dashboard/static/ serves: a fixed list, so no path from a request reaches the disk.
STATIC_FILES = {
    "dashboard.css": "text/css",
    "dashboard.js": "text/javascript",
    "vendor/vega.min.js": "text/javascript",
    "vendor/vega-lite.min.js": "text/javascript",
    "vendor/vega-embed.min.js": "text/javascript",
}


def static_file(name: str) -> bytes:
    """Return the bytes of a packaged static file (one of STATIC_FILES)."""
    if name not in STATIC_FILES:
        raise KeyError(name)
    return resources.files("troth.dashboard").joinpath("static", name).read_bytes()


def _day(value: Any) -> str:
    """Return an ISO-8601 time (or datetime) as a date such as '1 Mar 2026'."""
    if not value:
        return "—"
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return f"{when.day} {when:%b %Y}"


def _when(value: Any) -> str:
    """Return an ISO-8601 time as '1 Mar 2026 14:05' (UTC)."""
    if not value:
        return "—"
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return f"{when.day} {when:%b %Y %H:%M}"


def _count(value: Any) -> str:
    """Return a count with thousands separators."""
    return "—" if value is None else f"{int(value):,}"


def _money(value: Any) -> str:
    """Return an amount rounded to whole units with thousands separators."""
    return "—" if value is None else f"{float(value):,.0f}"


def _percent(value: Any) -> str:
    """Return a probability as a percentage."""
    return "—" if value is None else f"{float(value):.0%}"


def _plain(value: Any) -> str:
    """Return a value as text: JSON for lists and objects, yes/no for booleans."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return "" if value is None else str(value)


def _plain_number(value: Any) -> str:
    """Return a form value: '' for none, integers without '.0'."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _details(value: Any) -> str:
    """Return an event's properties as 'name value, ...' (what matters of it, in words)."""
    if isinstance(value, dict):
        return ", ".join(f"{k} {_plain(v)}" for k, v in value.items())
    return _plain(value)


def _driver(driver: dict[str, Any]) -> str:
    """Return a driver in words: 'days active raises it by 19 points'."""
    return (
        f"{driver.get('label') or driver.get('feature')} {driver.get('direction', 'moves')} "
        f"it by {abs(float(driver.get('contribution') or 0)):.0f} points"
    )


_templates = Environment(
    loader=PackageLoader("troth.dashboard", "templates"), autoescape=True, auto_reload=False
)
_templates.filters.update(
    day=_day,
    when=_when,
    count=_count,
    money=_money,
    percent=_percent,
    plain=_plain,
    details=_details,
    plain_number=_plain_number,
    driver=_driver,
)


def render(template: str, **context: Any) -> str:
    """Return a page rendered from `template` with `context` (every value HTML-escaped)."""
    context.setdefault("report", None)
    context.setdefault("who", None)
    return _templates.get_template(template).render(**context)


def why(engagement: dict[str, Any] | None) -> str:
    """Return the plain-language reason for a customer's stage ('' when not scored)."""
    return explain_stage(engagement) if engagement else ""
