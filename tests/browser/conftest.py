"""Browser fixtures: Debian's chromium driven by Playwright against a real `troth serve`.

Playwright's own browser download is not used (it needs a CDN this project must not depend on):
`make test` installs the `chromium` package with apt-get, and when that is impossible every
browser test is skipped with the reason. Every page a test opens is watched: a console error, an
uncaught exception or a request to any host but the page's own origin fails the test. A
screenshot of each page is written under tests/artifacts/browser/ on every run.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.e2e.harness import Server, free_port, troth

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "browser"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
DEMO_CUSTOMERS = 300
ROLES = ("admin", "analyst", "viewer")


def chromium_path() -> str | None:
    """The Debian chromium binary, or None when it is not installed."""
    return shutil.which("chromium")


@dataclass
class Watch:
    """What one browser page did: requests made, console errors and uncaught exceptions."""

    origin: str
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    expected_errors: list[re.Pattern[str]] = field(default_factory=list)

    def expect_error(self, pattern: str) -> None:
        """Allow console errors matching `pattern` (e.g. the 403 a refused page answers)."""
        self.expected_errors.append(re.compile(pattern))

    def outside_requests(self) -> list[str]:
        """Requests to anything but the page's own origin (data: and blob: stay local)."""
        return [
            url
            for url in self.requests
            if urlsplit(url).scheme not in {"data", "blob", "about"}
            and not (url == self.origin or url.startswith(self.origin + "/"))
        ]

    def unexpected_errors(self) -> list[str]:
        return [e for e in self.errors if not any(p.search(e) for p in self.expected_errors)]


@dataclass
class Demo:
    """The served demo database: the server, a bearer token per role, and the database file."""

    server: Server
    tokens: dict[str, str]
    db: Path

    @property
    def url(self) -> str:
        return self.server.url

    def api(self, path: str, role: str = "admin") -> dict:
        """GET a read-API path with the role's bearer token; the JSON answer."""
        answer = httpx.get(
            self.url + path,
            headers={"Authorization": f"Bearer {self.tokens[role]}"},
            timeout=30,
        )
        answer.raise_for_status()
        return answer.json()


@pytest.fixture(scope="session")
def browser():
    """One headless chromium for the whole session (skips every browser test without it)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    executable = chromium_path()
    if executable is None:
        pytest.skip(
            "chromium is missing: `make test` installs it with apt-get "
            "(apt-get install chromium); the install failed or was not run"
        )
    with sync_api.sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(
                executable_path=executable, headless=True, args=CHROMIUM_ARGS
            )
        except sync_api.Error as exc:  # a broken install is an install problem, not a failure
            pytest.skip(f"chromium at {executable} does not start: {exc.message.splitlines()[0]}")
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A scored demo population of DEMO_CUSTOMERS, made once per session, with a token per role."""
    directory = tmp_path_factory.mktemp("browser-demo")
    troth("demo", "--customers", str(DEMO_CUSTOMERS), "--dir", str(directory), db=None)
    db = directory / "troth.duckdb"
    tokens = {
        role: json.loads(troth("keys", "create", "--role", role, "--json", db=db).stdout)["key"]
        for role in ROLES
    }
    return db, tokens


@pytest.fixture(scope="session")
def offline_db(demo_db: tuple[Path, dict[str, str]]) -> Path:
    """A copy of the demo database for CLI commands: the server holds the original."""
    db, _tokens = demo_db
    copy = db.with_name("offline.duckdb")
    shutil.copyfile(db, copy)
    wal = db.with_name(db.name + ".wal")
    if wal.exists():
        shutil.copyfile(wal, copy.with_name(copy.name + ".wal"))
    return copy


@pytest.fixture(scope="session")
def demo(browser, demo_db: tuple[Path, dict[str, str]], offline_db: Path) -> Iterator[Demo]:
    """A real `troth serve` on the demo database (started only when chromium is there).

    `offline_db` is copied first, while nothing holds the database.
    """
    db, tokens = demo_db
    server = Server(db, free_port()).start()
    try:
        yield Demo(server, tokens, db)
    finally:
        server.stop()


def _artifact_name(nodeid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid.split("::", 1)[-1]).strip("_")


@pytest.fixture
def watch(demo: Demo) -> Watch:
    """What the test's page does; checked after the test (see pytest_runtest_call)."""
    return Watch(origin=demo.url)


@pytest.fixture
def context(browser, watch: Watch) -> Iterator:
    """A fresh browser context (own cookies) whose every request and error is recorded."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    ctx.on("request", lambda request: watch.requests.append(request.url))
    ctx.on("weberror", lambda error: watch.errors.append(f"uncaught: {error.error}"))
    yield ctx
    ctx.close()


@pytest.fixture
def page(context, watch: Watch, request: pytest.FixtureRequest) -> Iterator:
    """A page of `context` with console errors recorded and a screenshot taken at the end."""
    tab = context.new_page()
    tab.on(
        "console",
        lambda message: (
            watch.errors.append(f"console: {message.text} ({message.location})")
            if message.type == "error"
            else None
        ),
    )
    yield tab
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    if not tab.is_closed() and tab.url != "about:blank":
        tab.screenshot(
            path=ARTIFACTS / f"{_artifact_name(request.node.nodeid)}.png", full_page=True
        )


@pytest.fixture
def snap(page, request: pytest.FixtureRequest):
    """snap(name): a full-page screenshot of the page as it is now, under tests/artifacts/."""

    def take(name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{_artifact_name(request.node.nodeid)}-{name}.png"
        page.screenshot(path=path, full_page=True)
        return path

    return take


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    """Fail a browser test whose page logged an error or reached beyond the local server."""
    result = yield
    watch = item.funcargs.get("watch") if hasattr(item, "funcargs") else None
    if isinstance(watch, Watch):
        outside = watch.outside_requests()
        errors = watch.unexpected_errors()
        assert not outside, f"requests left {watch.origin}: {outside}"
        assert not errors, f"errors in the browser: {errors}"
    return result
