"""What the running server holds: the engine, the writer, counters, and cached key checks."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from troth.engine import Engine
from troth.errors import AuthenticationError
from troth.store.writer import GroupCommitWriter

__all__ = ["Counters", "ServerState"]

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


@dataclass
class ServerState:
    """The engine and writer of one `troth serve` process, plus its background identity loop."""

    engine: Engine
    writer: GroupCommitWriter
    identity_interval_s: float
    commit_timeout_s: float = 30.0
    counters: Counters = field(default_factory=Counters)
    _keys: dict[str, tuple[str, float]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
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

    def _identity_loop(self) -> None:
        while not self._stop.wait(self.identity_interval_s):
            try:
                if self.engine.identities_stale():
                    self.engine.resolve_identities()
                    self.counters.identity_runs += 1
            except Exception:
                log.exception("identity resolution failed; retrying later")
