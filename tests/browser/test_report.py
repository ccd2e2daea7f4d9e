"""`troth report` opened from disk in chromium with every network request refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.conftest import ARTIFACTS, Watch
from tests.browser.test_dashboard import number, wait_for_charts
from tests.e2e.harness import troth

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("with_customers", [False, True], ids=["aggregates", "with-customers"])
def test_the_report_opens_offline_and_draws_its_charts(
    browser, offline_db: Path, tmp_path: Path, with_customers: bool
) -> None:
    out = tmp_path / "troth-report.html"
    troth(
        "report",
        "--out",
        str(out),
        *(["--with-customers"] if with_customers else []),
        db=offline_db,
    )
    url = out.as_uri()
    watch = Watch(origin=url)
    context = browser.new_context(offline=True)
    refused: list[str] = []

    def refuse(route) -> None:
        refused.append(route.request.url)
        route.abort()

    context.route(lambda u: not u.startswith("file:"), refuse)
    context.on("request", lambda request: watch.requests.append(request.url))
    try:
        tab = context.new_page()
        tab.on("console", lambda m: watch.errors.append(m.text) if m.type == "error" else None)
        tab.on("pageerror", lambda error: watch.errors.append(str(error)))
        tab.goto(url)
        names = wait_for_charts(tab)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        tab.screenshot(path=ARTIFACTS / f"report-{out.stem}-{with_customers}.png", full_page=True)
        assert {"ladder", "clv", "cev", "attribute-active"} <= set(names)
        assert number(tab, "customers-total") > 0
        assert tab.locator("a[href^='/customers']").count() == 0  # no links into a server
        listed = tab.get_by_test_id("top-cev-table").count()
        assert listed == (1 if with_customers else 0)
    finally:
        context.close()
    assert refused == [], f"the report tried to reach {refused}"
    assert watch.outside_requests() == []
    assert watch.errors == []
    assert watch.requests == [url]  # the file itself, nothing else
