"""`troth serve`: the HTTP server (Segment ingestion, read API, health, metrics)."""

from __future__ import annotations

from typing import Annotated

import typer

from troth.cli.common import ConfigOption, DbOption, fail, settings_for
from troth.engine import Engine
from troth.errors import TrothError


def serve(
    host: Annotated[
        str | None, typer.Option(help="Interface to listen on \\[default: 127.0.0.1].")
    ] = None,
    port: Annotated[int | None, typer.Option(help="TCP port \\[default: 8000].")] = None,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Serve the Segment HTTP API at /v1 and the read API at /api/v1 until interrupted."""
    import uvicorn

    from troth.api import create_app

    settings = settings_for(config)
    try:
        engine = Engine.open(settings, db)
    except TrothError as exc:
        fail(str(exc))
    app = create_app(engine)
    uvicorn.run(
        app,
        host=host or settings.server.host,
        port=port or settings.server.port,
        log_level="info",
        access_log=False,
        timeout_graceful_shutdown=30,
    )
