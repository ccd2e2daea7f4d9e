"""The customer portal in chromium: a customer opens their link, switches a purpose off, saves."""

from __future__ import annotations

import httpx
import pytest

from tests.browser.conftest import Demo, Watch

pytestmark = pytest.mark.browser


def portal_link(demo: Demo) -> tuple[str, str]:
    """(customer id, portal URL) of a scored customer, made by the admin API."""
    customers = demo.api("/api/v1/customers?sort=events&limit=1")["customers"]
    customer = customers[0]["customer_id"]
    made = httpx.post(
        f"{demo.url}/api/v1/customers/{customer}/portal-link",
        headers={"Authorization": f"Bearer {demo.tokens['admin']}"},
        timeout=30,
    )
    assert made.status_code == 200, made.text
    return customer, made.json()["url"]


def test_portal_shows_the_data_and_saves_a_switched_purpose(page, demo: Demo, snap) -> None:
    customer, url = portal_link(demo)
    assert url.startswith(demo.url + "/portal/")

    twin = httpx.get(f"{demo.url}/api/portal/{url.rsplit('/', 1)[1]}", timeout=30).json()
    assert twin["customer_id"] == customer

    page.goto(url)
    assert page.locator("h1").inner_text() == "Your data and your choices"
    shown = page.locator("td.value").all_inner_texts()
    assert {i["value"] for i in twin["identifiers"]} <= set(shown)
    # The stylesheet loaded and applied: switches are drawn, not bare checkboxes.
    switch = page.locator('input[name="granted"][value="marketing:email"]')
    assert switch.evaluate("e => getComputedStyle(e).appearance") == "none"
    snap("before")

    was_on = switch.is_checked()
    page.locator("label.switch", has=switch).click()
    assert switch.is_checked() is not was_on
    assert switch.evaluate(
        "e => getComputedStyle(e.nextElementSibling.nextElementSibling, '::before').content"
    ) == ('"on"' if not was_on else '"off"')

    with page.expect_navigation():
        page.get_by_role("button", name="Save my choices").click()
    status = page.get_by_role("status")
    assert "Saved." in status.inner_text()
    assert f"{'on' if not was_on else 'off'}" in status.inner_text()
    saved = page.locator('input[name="granted"][value="marketing:email"]')
    assert saved.is_checked() is not was_on
    snap("saved")

    twin = httpx.get(f"{demo.url}/api/portal/{url.rsplit('/', 1)[1]}", timeout=30).json()
    states = {p["purpose"]: p["granted"] for p in twin["purposes"]}
    assert states["marketing:email"] is not was_on


def test_switching_profiling_off_withholds_the_scores(page, demo: Demo) -> None:
    _customer, url = portal_link(demo)
    page.goto(url)
    profiling = page.locator('input[name="granted"][value="profiling"]')
    if not profiling.is_checked():
        page.locator("label.switch", has=profiling).click()
        with page.expect_navigation():
            page.get_by_role("button", name="Save my choices").click()
    assert "Where you stand with us" in page.content()

    page.locator("label.switch", has=profiling).click()
    with page.expect_navigation():
        page.get_by_role("button", name="Save my choices").click()
    assert "Withheld: no consent." in page.locator("main").inner_text()
    assert not page.locator('input[name="granted"][value="profiling"]').is_checked()


def test_a_tampered_link_is_refused_without_data(page, demo: Demo, watch: Watch) -> None:
    _customer, url = portal_link(demo)
    watch.expect_error(r"status of 403")
    response = page.goto(url[:-4] + ("AAAA" if not url.endswith("AAAA") else "BBBB"))
    assert response is not None and response.status == 403
    assert page.locator("h1").inner_text() == "This link is not valid or has expired"
    assert page.locator("form").count() == 0
