"""The FastAPI application: built around an Engine, with the writer running for its lifetime."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, PlainTextResponse

from troth import __version__
from troth.api import access, consent, dashboard, ingestion, portal, read
from troth.api.erasure import ShareDatabase
from troth.api.erasure import router as erasure_router
from troth.api.state import ServerState
from troth.config import ServerSettings
from troth.dashboard.overview import overview
from troth.engine import Engine
from troth.errors import AuthenticationError, CustomerNotFound, TrothError
from troth.store.writer import GroupCommitWriter

__all__ = ["create_app"]

log = logging.getLogger(__name__)


def create_app(engine: Engine, server: ServerSettings | None = None) -> FastAPI:
    """Return the Troth HTTP app over `engine`; the writer starts and stops with the app."""
    server = server or engine.settings.server
    writer = GroupCommitWriter(
        engine.db,
        max_queued_events=server.queue_max_events,
        max_group_events=server.group_commit_max_events,
        retry_after_s=server.retry_after_s,
    )
    state = ServerState(
        engine, writer, server.identity_interval_s, commit_timeout_s=server.commit_timeout_s
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        state.start()
        # The overview's aggregates take about a second at 100k customers: compute them once
        # now, so the first visitor does not wait (the engine keeps them until the next score).
        warming = asyncio.create_task(_warm_overview(state))
        try:
            yield
        finally:
            warming.cancel()
            state.stop()

    app = FastAPI(
        title="Troth",
        version=__version__,
        summary="Customer engagement engine: Segment-compatible ingestion and read API.",
        lifespan=lifespan,
    )
    app.state.troth = state
    # Browser SDKs (analytics.js, RudderStack JS) post from the site's own origin.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_methods=["GET", "POST"],
        allow_headers=["Authorization", "Content-Type", "Content-Encoding"],
        max_age=86400,
    )
    app.include_router(ingestion.router)
    app.include_router(read.router)
    app.include_router(erasure_router)
    # An erasure swaps the database file: it waits for other requests and they wait for it.
    app.add_middleware(ShareDatabase, gate=state.gate)
    app.include_router(access.router)
    app.include_router(consent.router)
    app.include_router(portal.router)
    app.include_router(dashboard.router)
    _add_error_handlers(app)
    _add_operations_routes(app, state)
    return app


# Exceptions that reach the app, the status each answers, and extra headers.
_ERROR_STATUSES: tuple[tuple[type[Exception], int, dict[str, str] | None], ...] = (
    (AuthenticationError, 401, {"WWW-Authenticate": "Bearer"}),
    (read.Forbidden, 403, None),
    (CustomerNotFound, 404, None),
    (access.CredentialNotFound, 404, None),
    (RequestValidationError, 400, None),
    (TrothError, 400, None),
)


async def _warm_overview(state: ServerState) -> None:
    """Compute the dashboard overview's reads once, holding a share of the database."""
    try:
        async with state.gate.shared():
            for personal in (False, True):
                await asyncio.to_thread(overview, state.engine, personal=personal, links=personal)
    except TrothError:
        return  # nothing scored yet: the overview says so when asked
    except Exception:
        log.exception("warming the dashboard overview failed; pages compute it when asked")


def _add_error_handlers(app: FastAPI) -> None:
    for error, status, headers in _ERROR_STATUSES:

        async def _answer(
            _request: Request, exc: Exception, status: int = status, headers=headers
        ) -> JSONResponse:
            return JSONResponse(
                {"success": False, "error": str(exc)}, status_code=status, headers=headers
            )

        app.add_exception_handler(error, _answer)


def _add_operations_routes(app: FastAPI, state: ServerState) -> None:
    @app.get("/health")
    def health() -> dict[str, object]:
        """Return liveness and the write queue depth."""
        return {
            "status": "ok",
            "version": __version__,
            "queued_events": state.writer.queued_events,
            "schema_version": state.engine.db.schema_version(),
        }

    @app.get("/metrics", response_class=PlainTextResponse)
    def metrics() -> str:
        """Return counters in the Prometheus text format."""
        c = state.counters
        values = {
            "troth_http_requests_total": c.requests,
            "troth_events_accepted_total": c.events_accepted,
            "troth_events_rejected_total": c.events_rejected,
            "troth_requests_throttled_total": c.requests_throttled,
            "troth_requests_unauthorized_total": c.requests_unauthorized,
            "troth_events_written_total": state.writer.events_written,
            "troth_events_suppressed_total": state.writer.events_suppressed,
            "troth_commits_total": state.writer.commits,
            "troth_identity_runs_total": c.identity_runs,
            "troth_write_queue_events": state.writer.queued_events,
        }
        return "".join(f"{name} {value}\n" for name, value in values.items())
