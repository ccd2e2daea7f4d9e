"""The dashboard over a scored demo database: sign-in, roles, numbers equal to the API's,
search, escaping, injection, no request beyond the server, the self-contained report."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.e2e.harness import troth
from troth.api import create_app
from troth.config import Settings
from troth.engine import Engine

PAGES = ("/", "/overview", "/customers", "/customers?stage=retention&active_min=20&sort=clv")
_URL = re.compile(r"""(?:src|href|action)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("dashboard")
    out = troth("demo", "--customers", "300", "--months", "6", "--dir", str(folder), db=None)
    assert "troth-report.html" in out.stdout and "keys create --role analyst" in out.stdout
    # Before the served engine holds the database: the CLI cannot open it while a server does.
    written = troth(
        "report",
        "--out",
        str(folder / "with.html"),
        "--with-customers",
        db=folder / "troth.duckdb",
    )
    assert "with.html" in written.stdout
    return folder


@pytest.fixture(scope="module")
def served(demo: Path):
    engine = Engine.open(Settings(), demo / "troth.duckdb")
    tokens = {role: engine.create_token(role)[1] for role in ("viewer", "analyst")}
    with TestClient(create_app(engine), follow_redirects=False) as client:
        yield client, tokens, engine


def _get(client: TestClient, path: str, token: str | None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.get(path, headers=headers)


def _testid(html: str, testid: str) -> str:
    found = re.search(rf'data-testid="{re.escape(testid)}"[^>]*>([^<]*)<', html)
    assert found, f"no {testid}"
    return found.group(1).replace(",", "")


def test_every_page_opens_for_an_analyst_and_redirects_without_a_token(served) -> None:
    client, tokens, engine = served
    some = engine.customers(limit=1)["customers"][0]["customer_id"]
    for path in (*PAGES, f"/customers/{some}"):
        page = _get(client, path, tokens["analyst"])
        assert page.status_code == 200, path
        assert "default-src 'none'" in page.headers["content-security-policy"]
        assert "unsafe-eval" not in page.headers["content-security-policy"]
        assert page.headers["cache-control"] == "no-store"
        away = _get(client, path, None)
        assert away.status_code == 303
        assert away.headers["location"].startswith("/signin?next=")
    assert _get(client, "/customers", "not-a-token").status_code == 303


def test_sign_in_sets_an_httponly_strict_cookie_and_signs_out(served) -> None:
    client, tokens, _ = served
    refused = client.post("/signin", data={"token": "wrong", "next": "/"})
    assert refused.status_code == 401 and "unknown or revoked" in refused.text
    signed = client.post("/signin", data={"token": tokens["analyst"], "next": "/customers"})
    assert signed.status_code == 303 and signed.headers["location"] == "/customers"
    cookie = signed.headers["set-cookie"]
    assert "troth_token=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert client.get("/customers").status_code == 200  # the cookie alone signs in
    away = client.post("/signin", data={"token": tokens["analyst"], "next": "//evil.example/"})
    assert away.headers["location"] == "/"  # no open redirect
    out = client.post("/signout")
    assert out.status_code == 303 and 'troth_token=""' in out.headers["set-cookie"]
    client.cookies.clear()
    assert client.get("/customers").status_code == 303


def test_a_viewer_sees_aggregates_only(served) -> None:
    client, tokens, engine = served
    some = engine.customers(limit=1)["customers"][0]["customer_id"]
    assert _get(client, "/customers", tokens["viewer"]).status_code == 403
    assert _get(client, f"/customers/{some}", tokens["viewer"]).status_code == 403
    assert _get(client, "/customers?q=x", tokens["viewer"]).status_code == 403
    page = _get(client, "/", tokens["viewer"])
    assert page.status_code == 200
    assert 'data-testid="aggregates-only"' in page.text
    assert "c_" not in page.text and "@example.com" not in page.text
    assert 'href="/customers' not in page.text


def test_the_overview_shows_the_apis_numbers(served) -> None:
    client, tokens, _ = served
    page = _get(client, "/", tokens["analyst"]).text
    api = _get(client, "/api/v1/stages", tokens["analyst"]).json()
    for stage, n in api["by_stage"].items():
        assert _testid(page, f"stage-count-{stage}") == str(n)
        assert f'href="/customers?stage={stage}"' in page
    for phase, n in api["by_phase"].items():
        assert _testid(page, f"phase-count-{phase}") == str(n)
    assert _testid(page, "cognitive-loyalty-count") == str(api["cognitive_loyalty"])
    assert _testid(page, "withheld-count") == str(api["withheld"])
    assert _testid(page, "no-stage-count") == str(api["no_stage"])
    ladder = _get(client, "/api/v1/ladder", tokens["analyst"]).json()
    for rung, n in ladder["overall"]["reached"].items():
        assert _testid(page, f"ladder-count-{rung}") == str(n)
    value = _get(client, "/api/v1/value", tokens["analyst"]).json()
    assert _testid(page, "value-buyers") == str(value["buyers"])
    assert _testid(page, "value-at-risk-count") == str(value["at_risk"])
    for customer in value["top_cev"]:
        assert f'data-testid="customer-link-{customer["customer_id"]}"' in page
    flows = _get(client, "/api/v1/transitions", tokens["analyst"]).json()
    latest = flows["periods"][-1]
    for stage, flow in flows["flows"][latest].items():
        assert _testid(page, f"flow-in-{stage}") == str(flow["inflow"])


def test_every_histogram_bin_links_to_as_many_customers(served) -> None:
    client, tokens, _ = served
    page = _get(client, "/", tokens["analyst"]).text
    links = re.findall(r'<a class="num" href="([^"]+)" data-testid="(attribute-active-\d+)">', page)
    assert len(links) == 10
    for href, testid in links:
        listed = _get(client, href.replace("&amp;", "&"), tokens["analyst"]).text
        assert _testid(listed, "customers-count") == _testid(page, testid)
    charts = json.loads(re.search(r'id="troth-charts">(.*?)</script>', page, re.S).group(1))
    assert {"ladder", "transitions", "stages-over-time", "attribute-active", "clv"} <= set(charts)
    assert all(len(spec["data"]["values"]) < 200 for spec in charts.values())


_NUMBER_LINK = r'<a class="num" href="([^"]+)" data-testid="({})">([^<]*)</a>'


def _links(page: str, testid: str) -> list[tuple[str, str, str]]:
    """Return (href, testid, number shown) of the overview's linked numbers matching testid."""
    return re.findall(_NUMBER_LINK.format(testid), page)


def test_every_ladder_flow_and_at_risk_number_links_to_as_many_customers(served) -> None:
    client, tokens, _ = served
    page = _get(client, "/", tokens["analyst"]).text
    ladder = _links(page, r"ladder-count-\w+")
    flows = _links(page, r"flow-(?:in|out|stayed)-\w+")
    matrix = _links(page, r"flow-matrix-\w+-\w+")
    at_risk = _links(page, "value-at-risk-count")
    assert (len(ladder), len(flows), len(matrix), len(at_risk)) == (5, 21, 72, 1)
    api = _get(client, "/api/v1/transitions", tokens["analyst"]).json()
    cells = api["matrices"][api["periods"][-1]]
    assert sum(int(n.replace(",", "")) for *_, n in matrix) == sum(
        n for row in cells.values() for n in row.values()
    )
    for href, testid, shown in [*ladder, *flows, *matrix, *at_risk]:
        url = href.replace("&amp;", "&")
        listed = _get(client, url, tokens["analyst"])
        assert listed.status_code == 200, url
        assert _testid(listed.text, "customers-count") == shown.replace(",", ""), testid
        assert 'data-testid="active-filter"' in listed.text, url
        query = url.partition("?")[2]
        total = _get(client, f"/api/v1/customers?{query}&limit=1", tokens["analyst"]).json()
        assert str(total["total"]) == shown.replace(",", ""), testid
    assert 'href="/customers?at_risk=1"' in page and 'href="/customers?rung=advocate"' in page


@pytest.mark.parametrize(
    "query",
    ["rung=top", "moved_from=bliss", "moved_to=new", "rung=inform%27%20OR%20%271%27=%271"],
)
def test_unknown_rungs_and_states_are_a_400(served, query: str) -> None:
    client, tokens, _ = served
    api = _get(client, f"/api/v1/customers?{query}", tokens["analyst"])
    assert api.status_code == 400 and "unknown" in api.text
    page = _get(client, f"/customers?{query}", tokens["analyst"])
    assert page.status_code == 400 and 'data-testid="filter-error"' in page.text
    assert 'data-testid="active-filter"' not in page.text
    assert _get(client, f"/api/v1/customers?{query}", tokens["viewer"]).status_code == 403


def test_search_by_email_opens_the_360_and_reads_are_audited(served) -> None:
    client, tokens, engine = served
    customer_id = engine.customers(sort="revenue", limit=1)["customers"][0]["customer_id"]
    email = engine.customer(customer_id)["traits"]["email"]
    found = _get(client, f"/customers?q={email}", tokens["analyst"])
    assert found.status_code == 303 and found.headers["location"] == f"/customers/{customer_id}"
    page = _get(client, found.headers["location"], tokens["analyst"])
    assert _testid(page.text, "customer-id") == customer_id
    assert 'data-testid="evidence"' in page.text and 'data-testid="timeline"' in page.text
    entries = engine.audit_log(customer_id)["entries"]
    assert any(e["action"] == "customer.read" for e in entries)
    missing = _get(client, "/customers?q=nobody@nowhere", tokens["analyst"])
    assert missing.status_code == 200 and 'data-testid="search-not-found"' in missing.text
    assert _get(client, "/customers/nobody-at-all", tokens["analyst"]).status_code == 404


@pytest.mark.parametrize(
    "query",
    [
        "stage=retention';DROP TABLE events;--",
        "sort=revenue;DELETE FROM customer_stage",
        "active_min=1 OR 1=1",
        "active_min=nan",
        "limit=-5&offset=-9",
        "q=<script>alert(1)</script>",
        "q=' OR '1'='1",
        "phase=%00",
        "rung=advocate';DROP TABLE customer_ladder;--",
        "moved_from=none&moved_to=retention%27)%20OR%201=1--",
        "at_risk=1;DELETE FROM customer_value",
        "rung=<script>alert(1)</script>",
    ],
)
def test_injection_in_filters_sort_and_search_is_harmless(served, query: str) -> None:
    client, tokens, engine = served
    before = engine.stage_distribution()
    page = _get(client, f"/customers?{query}", tokens["analyst"])
    assert page.status_code in (200, 400)
    assert "<script>alert" not in page.text
    assert engine.stage_distribution() == before


def test_no_page_or_script_refers_to_another_host(served) -> None:
    client, tokens, engine = served
    some = engine.customers(limit=1)["customers"][0]["customer_id"]
    for path in (*PAGES, f"/customers/{some}", "/signin"):
        html = _get(client, path, tokens["analyst"]).text
        assert not _URL.search(html), path
    script = client.get("/dashboard/static/dashboard.js").text
    assert "http" not in script
    for name in ("vega.min.js", "vega-lite.min.js", "vega-embed.min.js"):
        assert client.get(f"/dashboard/static/vendor/{name}").status_code == 200
    assert client.get("/dashboard/static/../../engine.py").status_code == 404


def test_the_report_is_self_contained(demo: Path) -> None:
    shared = (demo / "troth-report.html").read_text(encoding="utf-8")
    out = demo / "with.html"
    personal = out.read_text(encoding="utf-8")
    for html in (shared, personal):
        assert not _URL.search(html)
        assert "<script src" not in html and '<link rel="stylesheet"' not in html
        assert 'http-equiv="Content-Security-Policy"' in html and "sha256-" in html
        charts = json.loads(re.search(r'id="troth-charts">(.*?)</script>', html, re.S).group(1))
        assert {"ladder", "transitions", "attribute-active", "card", "clv", "cev"} <= set(charts)
        assert 'href="/customers' not in html
    assert 'data-testid="aggregates-only"' in shared and "c_" not in shared.split("troth-charts")[0]
    assert 'data-testid="top-cev-table"' in personal
    assert out.stat().st_mode & 0o077 == 0
