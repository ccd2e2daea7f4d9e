"""What the running server holds: the engine, the writer, counters, and cached key checks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from troth.engine import Engine
from troth.errors import AuthenticationError
from troth.privacy.erasure import ErasureSummary
from troth.store.writer import GroupCommitWriter

__all__ = ["Counters", "DatabaseGate", "ServerState"]

log = logging.getLogger(__name__)

_KEY_TTL_S = 5.0


@dataclass
class Counters:
    """Monotonic counters exported at /metrics."""

    requests: int = 0
    events_accepted: int = 0
    events_rejected: int = 0
    requests_throttled: int = 0
    requests_unauthorized: int = 0
    identity_runs: int = 0


class DatabaseGate:
    """Requests share the database; an erasure has it alone while it rewrites the file.

    Lives on the event loop: a request holds its share from arrival to answer (including the
    thread a sync endpoint runs in), and once an erasure waits, new requests wait behind it.
    """

    def __init__(self) -> None:
        self._active = 0
        self._exclusive = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed = asyncio.Condition()

    def _condition(self) -> asyncio.Condition:
        """Return the condition of the running loop (a test client may start a loop per call)."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop, self._changed = loop, asyncio.Condition()
            self._active, self._exclusive = 0, False
        return self._changed

    @contextlib.asynccontextmanager
    async def shared(self) -> AsyncIterator[None]:
        """Hold a share of the database for the block."""
        changed = self._condition()
        async with changed:
            await changed.wait_for(lambda: not self._exclusive)
            self._active += 1
        try:
            yield
        finally:
            async with changed:
                self._active -= 1
                changed.notify_all()

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        """Hold the database alone for the block, once every share is given back."""
        changed = self._condition()
        async with changed:
            await changed.wait_for(lambda: not self._exclusive)
            self._exclusive = True
            await changed.wait_for(lambda: self._active == 0)
        try:
            yield
        finally:
            async with changed:
                self._exclusive = False
                changed.notify_all()


@dataclass
class ServerState:
    """The engine and writer of one `troth serve` process, plus its background identity loop."""

    engine: Engine
    writer: GroupCommitWriter
    identity_interval_s: float
    commit_timeout_s: float = 30.0
    counters: Counters = field(default_factory=Counters)
    _keys: dict[str, tuple[str, float]] = field(default_factory=dict)
    gate: DatabaseGate = field(default_factory=DatabaseGate)
    _stop: threading.Event = field(default_factory=threading.Event)
    # Held by each background identity run, and by an erasure while it swaps the file.
    _maintenance: threading.Lock = field(default_factory=threading.Lock)
    _identity_thread: threading.Thread | None = None

    def source_for(self, write_key: str | None) -> str:
        """Return the source of a write key, cached for a few seconds; raise if not valid."""
        now = time.monotonic()
        if write_key is not None:
            cached = self._keys.get(write_key)
            if cached is not None and now - cached[1] < _KEY_TTL_S:
                return cached[0]
        try:
            source = self.engine.source_for_write_key(write_key)
        except AuthenticationError:
            self.counters.requests_unauthorized += 1
            raise
        self._keys[write_key] = (source, now)  # type: ignore[index]
        return source

    def start(self) -> None:
        """Start the writer and the periodic identity resolution."""
        self.engine.resolve_on_read = False
        self.engine.resolve_identities()  # reads are current from the first request on
        self.writer.start()
        self._identity_thread = threading.Thread(
            target=self._identity_loop, name="troth-identity", daemon=True
        )
        self._identity_thread.start()

    def stop(self) -> None:
        """Write what is queued, resolve identities a last time, and close the database."""
        self._stop.set()
        self.writer.stop()
        if self._identity_thread is not None:
            self._identity_thread.join(timeout=60)
        try:
            self.engine.resolve_identities()
        except Exception:
            log.exception("final identity resolution failed")
        self.engine.close()

    def erase(self, identifier: str, actor: str) -> ErasureSummary:
        """Erase a customer with the writer and the identity loop paused; return the summary.

        The caller holds the gate exclusively, so no request uses the database either.
        """
        with self.writer.paused(), self._maintenance:
            return self.engine.erase(identifier, actor)

    def _identity_loop(self) -> None:
        while not self._stop.wait(self.identity_interval_s):
            try:
                with self._maintenance:
                    if self.engine.identities_stale():
                        self.engine.resolve_identities()
                        self.counters.identity_runs += 1
            except Exception:
                log.exception("identity resolution failed; retrying later")
