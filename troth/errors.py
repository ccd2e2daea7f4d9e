"""One exception hierarchy for Troth; every message says what was wrong and what to do."""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "ConfigError",
    "CustomerNotFound",
    "EventValidationError",
    "ImportFileError",
    "OverloadedError",
    "StoreError",
    "TrothError",
]


class TrothError(Exception):
    """Base class of every error Troth raises on purpose."""


class ConfigError(TrothError):
    """The configuration file or an environment variable holds an invalid value."""


class StoreError(TrothError):
    """The event store cannot be opened, migrated or written."""


class EventValidationError(TrothError):
    """An event does not follow the Segment spec; `field` names the offending field."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class ImportFileError(TrothError):
    """A file given to `troth import` cannot be read or mapped."""


class AuthenticationError(TrothError):
    """A write key or bearer token is missing, unknown, revoked or lacks the role."""


class OverloadedError(TrothError):
    """The write queue is full; the client should retry after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class CustomerNotFound(TrothError):
    """No customer holds the identifier that was asked for."""
