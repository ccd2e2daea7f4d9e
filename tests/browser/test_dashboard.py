"""The dashboard in chromium: sign-in, the overview's charts and numbers against the read API,
search to a customer 360, the customer list, and what a viewer may not open."""

from __future__ import annotations

import pytest

from tests.browser.conftest import Demo, Watch

pytestmark = pytest.mark.browser

CHART_TIMEOUT_MS = 15_000


def sign_in(page, demo: Demo, role: str, then: str = "/") -> None:
    """Sign in through the form with the role's token; land on `then`."""
    page.goto(f"{demo.url}/signin?next={then}")
    page.get_by_test_id("signin-token").fill(demo.tokens[role])
    with page.expect_navigation():
        page.get_by_test_id("signin-submit").click()


def wait_for_charts(page) -> list[str]:
    """Wait until every chart of the page is drawn; return their names."""
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-chart]')]"
        ".every(e => e.getAttribute('data-rendered'))",
        timeout=CHART_TIMEOUT_MS,
    )
    charts = page.locator("[data-chart]")
    names = []
    for i in range(charts.count()):
        chart = charts.nth(i)
        name = chart.get_attribute("data-chart")
        assert chart.get_attribute("data-rendered") == "true", f"{name}: {chart.inner_text()}"
        drawn = chart.locator("svg, canvas")
        assert drawn.count() > 0, f"chart {name} has no svg or canvas"
        box = drawn.first.bounding_box()
        assert box and box["width"] > 50 and box["height"] > 50, f"chart {name} is empty: {box}"
        names.append(name)
    return names


def number(page, testid: str) -> float:
    """The number an element with this data-testid shows ("1,234" -> 1234)."""
    return float(page.get_by_test_id(testid).text_content().replace(",", "").strip())


def test_overview_draws_every_chart(page, demo: Demo, snap) -> None:
    sign_in(page, demo, "analyst")
    assert page.url == demo.url + "/"
    names = wait_for_charts(page)
    assert {"ladder", "card", "p_alive", "clv", "cev"} <= set(names)
    assert {f"attribute-{a}" for a in ("active", "emotional", "rational", "ethical")} <= set(names)
    assert page.get_by_test_id("cycle").locator("circle").count() == 7
    snap("overview")


def test_overview_numbers_match_the_api(page, demo: Demo) -> None:
    stages = demo.api("/api/v1/stages", "analyst")
    value = demo.api("/api/v1/value", "analyst")
    sign_in(page, demo, "analyst")

    assert number(page, "customers-total") == stages["customers"]
    for stage, n in stages["by_stage"].items():
        assert number(page, f"stage-count-{stage}") == n, stage
    for phase, n in stages["by_phase"].items():
        assert number(page, f"phase-count-{phase}") == n, phase
    assert number(page, "no-stage-count") == stages["no_stage"]
    assert number(page, "cognitive-loyalty-count") == stages["cognitive_loyalty"]
    assert number(page, "withheld-count") == stages["withheld"]
    assert number(page, "value-buyers") == value["buyers"]
    assert number(page, "value-at-risk-count") == value["at_risk"]
    for total in ("clv", "cev"):
        assert number(page, f"value-total-{total}") == round(value["totals"][total]), total
    at_risk = page.get_by_test_id("at-risk-table").locator("tbody tr")
    assert at_risk.count() == len(value["at_risk_customers"])
    for customer in value["at_risk_customers"]:
        assert page.get_by_test_id(f"customer-link-{customer['customer_id']}").count() >= 1
    bands = page.get_by_test_id("p-alive-table").locator("tbody tr").count()
    buyers_in_bands = sum(number(page, f"p-alive-{i}") for i in range(bands))
    assert buyers_in_bands == sum(band["buyers"] for band in value["p_alive_bands"])


def test_a_stage_count_links_to_its_customers(page, demo: Demo) -> None:
    stages = demo.api("/api/v1/stages", "analyst")
    stage = max(stages["by_stage"], key=stages["by_stage"].get)
    sign_in(page, demo, "analyst")
    with page.expect_navigation():
        page.get_by_test_id(f"stage-count-{stage}").click()
    assert "/customers" in page.url
    assert number(page, "customers-count") == stages["by_stage"][stage]
    rows = page.get_by_test_id("customer-row")
    assert 0 < rows.count() <= stages["by_stage"][stage]


def test_search_opens_the_customer_360(page, demo: Demo, snap) -> None:
    top = demo.api("/api/v1/customers?sort=revenue&limit=1", "analyst")["customers"][0]
    profile = demo.api(f"/api/v1/customers/{top['customer_id']}", "analyst")
    email = profile["traits"]["email"]
    sign_in(page, demo, "analyst")

    page.get_by_test_id("search-input").fill(email)
    with page.expect_navigation():
        page.get_by_test_id("search-submit").click()
    assert page.url.endswith(f"/customers/{top['customer_id']}")
    assert page.get_by_test_id("customer-id").inner_text() == top["customer_id"]
    shown = page.get_by_test_id("identifiers").inner_text()
    assert all(i["value"] in shown for i in profile["identifiers"])
    if profile.get("engagement"):  # not withheld (a portal test may have switched consent)
        assert page.get_by_test_id("customer-stage").inner_text() == (
            profile["engagement"]["stage"] or "no stage"
        )
    snap("customer-360")

    page.get_by_test_id("search-input").fill("nobody-at-all@example.invalid")
    with page.expect_navigation():
        page.get_by_test_id("search-submit").click()
    assert page.get_by_test_id("search-not-found").is_visible()


def test_customer_list_filters_and_opens_a_row(page, demo: Demo, snap) -> None:
    stages = demo.api("/api/v1/stages", "analyst")
    sign_in(page, demo, "analyst", then="/customers")
    page.get_by_test_id("filter-stage").select_option("retention")
    with page.expect_navigation():
        page.get_by_test_id("filter-submit").click()
    assert number(page, "customers-count") == stages["by_stage"]["retention"]
    snap("customers")
    first = page.get_by_test_id("customer-row").first.locator("a").first
    customer = first.inner_text()
    with page.expect_navigation():
        first.click()
    assert page.get_by_test_id("customer-id").inner_text() == customer


def test_a_viewer_sees_aggregates_but_no_customer(page, demo: Demo, watch: Watch, snap) -> None:
    customer = demo.api("/api/v1/customers?limit=1", "analyst")["customers"][0]["customer_id"]
    watch.expect_error(r"status of 403")
    sign_in(page, demo, "viewer")
    wait_for_charts(page)
    assert page.get_by_test_id("signed-in-role").inner_text() == "viewer"
    assert page.get_by_test_id("aggregates-only").is_visible()
    assert page.get_by_test_id("nav-customers").count() == 0
    assert page.get_by_test_id("search-input").count() == 0
    assert page.locator(f"[data-testid=customer-link-{customer}]").count() == 0
    snap("viewer-overview")

    for path in (f"/customers/{customer}", "/customers", f"/customers?q={customer}"):
        response = page.goto(demo.url + path)
        assert response is not None and response.status == 403, path
        assert customer not in page.locator("main").inner_text()


def test_sign_in_sets_the_cookie_and_sign_out_clears_it(page, context, demo: Demo, watch) -> None:
    watch.expect_error(r"status of 401")
    page.goto(demo.url + "/")
    assert page.url.startswith(demo.url + "/signin")

    page.get_by_test_id("signin-token").fill("not-a-token")
    with page.expect_navigation():
        page.get_by_test_id("signin-submit").click()
    assert page.get_by_test_id("signin-error").is_visible()
    assert not [c for c in context.cookies() if c["name"] == "troth_token"]

    page.get_by_test_id("signin-token").fill(demo.tokens["admin"])
    with page.expect_navigation():
        page.get_by_test_id("signin-submit").click()
    (cookie,) = [c for c in context.cookies() if c["name"] == "troth_token"]
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == ""  # invisible to scripts
    assert page.get_by_test_id("signed-in-role").inner_text() == "admin"

    with page.expect_navigation():
        page.get_by_test_id("signout").click()
    assert page.url.startswith(demo.url + "/signin")
    assert not [c for c in context.cookies() if c["name"] == "troth_token"]
    page.goto(demo.url + "/customers")
    assert page.url.startswith(demo.url + "/signin")


def test_a_bearer_header_opens_the_dashboard_without_a_cookie(browser, demo: Demo) -> None:
    context = browser.new_context(
        extra_http_headers={"Authorization": f"Bearer {demo.tokens['analyst']}"}
    )
    try:
        tab = context.new_page()
        response = tab.goto(demo.url + "/customers")
        assert response is not None and response.status == 200
        assert tab.get_by_test_id("signed-in-role").inner_text() == "analyst"
        assert not context.cookies()
    finally:
        context.close()
