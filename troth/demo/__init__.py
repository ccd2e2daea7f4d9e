"""Seeded synthetic customers and their Segment-spec events, for demos and tests.

`generate_events` yields the event stream chunk by chunk; `write_events_parquet` writes it,
with the latent truth (typology, intended journey) next to it for checking computed results.
"""

from troth.demo.events import EVENT_SCHEMA
from troth.demo.generator import GenerationSummary, generate_events, write_events_parquet
from troth.demo.population import TYPOLOGIES

__all__ = [
    "EVENT_SCHEMA",
    "TYPOLOGIES",
    "GenerationSummary",
    "generate_events",
    "write_events_parquet",
]
