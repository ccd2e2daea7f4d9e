"""The browser fixtures' own guard: what counts as an outside request or a console error."""

from __future__ import annotations

import pytest

from tests.browser.conftest import Watch

pytestmark = pytest.mark.browser


def test_the_watch_sees_outside_requests_and_console_errors(browser) -> None:
    watch = Watch(origin="http://127.0.0.1:9")
    context = browser.new_context()
    context.route("**/*", lambda route: route.abort())  # nothing may actually leave
    context.on("request", lambda request: watch.requests.append(request.url))
    try:
        tab = context.new_page()
        tab.on("console", lambda m: watch.errors.append(m.text) if m.type == "error" else None)
        tab.set_content(
            '<img src="https://cdn.example.com/x.png"><img src="data:image/gif;base64,R0lGOD'
            'lhAQABAAAAACw="><script>console.error("boom")</script>'
        )
        tab.wait_for_timeout(200)
    finally:
        context.close()
    assert watch.outside_requests() == ["https://cdn.example.com/x.png"]
    assert any("boom" in e for e in watch.unexpected_errors())
    watch.expect_error("boom")
    assert not any("boom" in e for e in watch.unexpected_errors())
    assert not Watch(
        origin="http://127.0.0.1:9", requests=["http://127.0.0.1:9/a"]
    ).outside_requests()
    assert Watch(origin="http://127.0.0.1:9", requests=["http://127.0.0.1:90/a"]).outside_requests()
