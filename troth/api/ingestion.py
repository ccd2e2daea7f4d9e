"""The Segment HTTP Tracking API: POST /v1/{identify,track,page,screen,group,alias,batch,import}."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from troth.errors import AuthenticationError, EventValidationError, OverloadedError, StoreError
from troth.events.model import MAX_BATCH_BYTES, MAX_EVENT_BYTES
from troth.ingest.segment_http import decode_body, decompress, normalize_body, read_write_key
from troth.store.writer import CommitResult

__all__ = ["router"]

router = APIRouter()

_SINGLE = ("identify", "track", "page", "screen", "group", "alias")
_BATCH = ("batch", "import")
# Compressed bodies are capped at the same size as plain ones: gzip never makes JSON larger.
_READ_LIMIT = MAX_BATCH_BYTES


def _error(status: int, message: str, field: str | None = None, **extra: object) -> JSONResponse:
    """Return a JSON error answer in one shape for every endpoint."""
    body: dict[str, object] = {"success": False, "error": message}
    if field is not None:
        body["field"] = field
    body.update(extra)
    headers = {"WWW-Authenticate": 'Basic realm="troth"'} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


async def _read_body(request: Request, limit: int) -> bytes | None:
    """Return the body, or None as soon as it grows past `limit` bytes (never buffering more)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


@router.post("/v1/{call}", responses={400: {}, 401: {}, 404: {}, 429: {}, 503: {}})
async def ingest(call: str, request: Request) -> JSONResponse:
    """Store one Segment call or a batch; answer 200 only after the events are committed."""
    state = request.app.state.troth
    state.counters.requests += 1
    if call not in _SINGLE and call not in _BATCH:
        return _error(
            404, f"unknown endpoint /v1/{call}; use one of: " + ", ".join(_SINGLE + _BATCH)
        )
    is_batch = call in _BATCH
    limit = MAX_BATCH_BYTES if is_batch else MAX_EVENT_BYTES
    header_key = read_write_key(request.headers.get("authorization"))
    if header_key is not None:
        try:
            source_id = state.source_for(header_key)
        except AuthenticationError as exc:
            return _error(401, str(exc))
    body = await _read_body(request, _READ_LIMIT if is_batch else limit)
    if body is None:
        what = "batch" if is_batch else "event"
        return _error(400, f"{what} is larger than the {limit // 1024} KB limit")
    try:
        body = decompress(body, request.headers.get("content-encoding"), limit)
        parsed = decode_body(body, is_batch)
    except EventValidationError as exc:
        return _error(400, exc.message, exc.field)
    if header_key is None:
        try:
            source_id = state.source_for(parsed.write_key)
        except AuthenticationError as exc:
            return _error(401, str(exc))
    received_at = datetime.now(UTC)
    expected = None if is_batch else call
    result = normalize_body(parsed, received_at, source_id, expected, origin=f"http:{source_id}")
    state.counters.events_rejected += len(result.errors)
    if result.rows or result.rejects:
        try:
            outcome = await _commit(state, result.rows, result.rejects)
        except OverloadedError as exc:
            state.counters.requests_throttled += 1
            response = _error(429, str(exc))
            response.headers["Retry-After"] = str(int(exc.retry_after))
            return response
        except TimeoutError:
            response = _error(503, "the events were not committed in time; retry the request")
            response.headers["Retry-After"] = "1"
            return response
        if outcome.error is not None:
            response = _error(503, f"{outcome.error}; retry the request")
            response.headers["Retry-After"] = "1"
            return response
        state.counters.events_accepted += len(result.rows)
    if result.errors:
        first = result.errors[0]
        message = (
            first["error"]
            if len(parsed.calls) == 1
            else (
                f"{len(result.errors)} of {len(parsed.calls)} calls were rejected; "
                f"the other {len(result.rows)} were stored"
            )
        )
        return _error(
            400, message, first["field"], accepted=len(result.rows), rejected=result.errors
        )
    return JSONResponse({"success": True})


async def _commit(state, rows: list[tuple], rejects: list[tuple]) -> CommitResult:
    """Queue rows for the writer and wait until their transaction has committed."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[CommitResult] = loop.create_future()

    def finished(result: CommitResult) -> None:
        loop.call_soon_threadsafe(_resolve, done, result)

    try:
        state.writer.submit(rows, rejects, finished)
    except StoreError as exc:
        return CommitResult(0, exc)
    return await asyncio.wait_for(asyncio.shield(done), timeout=state.commit_timeout_s)


def _resolve(future: asyncio.Future, result: CommitResult) -> None:
    if not future.done():
        future.set_result(result)
