"""The HTTP interface: Segment-compatible ingestion under /v1 and the read API under /api/v1."""

from troth.api.app import create_app

__all__ = ["create_app"]
