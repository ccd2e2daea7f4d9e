"""Generate the seeded demo event stream chunk by chunk, and write it to Parquet."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from troth.demo.accounts import open_accounts
from troth.demo.advocacy import advocate
from troth.demo.browsing import browse
from troth.demo.cohort import Cohort, gather_cohort
from troth.demo.commerce import purchase
from troth.demo.events import EVENT_SCHEMA, assemble_events
from troth.demo.journeys import TRUTH_SCHEMA, describe_journeys
from troth.demo.marketing import contact
from troth.demo.names import format_user_ids
from troth.demo.period import plan_period
from troth.demo.service import serve
from troth.demo.trust import build_trust
from troth.demo.voice import listen

__all__ = ["GenerationSummary", "generate_events", "write_events_parquet"]

_ROW_GROUP_ROWS = 512 * 1024


@dataclass(frozen=True)
class GenerationSummary:
    """What write_events_parquet wrote: counts of customers and events."""

    customers: int
    events: int
    anonymous_visitors: int  # browsed anonymously (anonymousId only), then identified
    events_by_name: dict[str, int] = field(default_factory=dict)  # track event, else call type
    never_identified: int = 0  # browsed anonymously and never identified within the period


def _check(customers: int, chunk_customers: int) -> None:
    """Raise ValueError on arguments no population can be generated from."""
    if customers < 0:
        raise ValueError(f"customers must be 0 or more, not {customers}")
    if chunk_customers < 1:
        raise ValueError(f"chunk_customers must be at least 1, not {chunk_customers}")


def _chunks(
    customers: int, months: int, seed: int, end: datetime | None, chunk_customers: int
) -> Iterator[tuple[Cohort, pa.RecordBatch]]:
    """Yield each chunk's cohort and its events."""
    _check(customers, chunk_customers)
    period = plan_period(end, months)
    for first in range(0, customers, chunk_customers):
        index = np.arange(first, min(first + chunk_customers, customers), dtype=np.int64)
        cohort = gather_cohort(seed, index, customers, period)
        pieces = [
            *browse(cohort),
            *open_accounts(cohort),
            *purchase(cohort),
            *contact(cohort),
            *serve(cohort),
            *listen(cohort),
            *advocate(cohort),
            *build_trust(cohort),
        ]
        yield cohort, assemble_events(cohort, pieces)


def generate_events(
    customers: int = 5000,
    months: int = 12,
    seed: int = 7,
    end: datetime | None = None,
    chunk_customers: int = 20_000,
) -> Iterator[pa.RecordBatch]:
    """Yield the synthetic event stream as Arrow record batches (EVENT_SCHEMA), one per chunk.

    Rows are ordered by customer, then time; a customer's rows do not depend on the chunk size,
    as every random draw is keyed by (seed, customer number). `end` defaults to DEFAULT_END,
    2026-11-01T00:00Z, and events fall in the `months` calendar months before it.
    """
    for _, batch in _chunks(customers, months, seed, end, chunk_customers):
        yield batch


def _truth(cohort: Cohort) -> pa.Table:
    """Return the chunk's latent truth rows (TRUTH_SCHEMA)."""
    population, names = cohort.population, cohort.names
    count = len(population)
    has_app = population.has_app
    sizes = 1 + has_app.astype(np.int32)
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int32)
    # Interleave each customer's web id with its app id (when it has the app).
    both = pa.concat_arrays([names.anonymous_web, names.anonymous_app.fill_null("")])
    positions = np.stack([np.arange(count), count + np.arange(count)], axis=1).ravel()
    keep = np.stack([np.ones(count, dtype=bool), has_app], axis=1).ravel()
    values = both.take(pa.array(positions[keep]))
    anonymous_ids = pa.ListArray.from_arrays(pa.array(offsets), values)
    duplicate = population.duplicate_of
    duplicate_of = pc.if_else(
        pa.array(duplicate >= 0),
        format_user_ids(np.maximum(duplicate, 0)),
        pa.scalar(None, pa.string()),
    )
    return describe_journeys(
        population,
        cohort.journeys,
        cohort.period,
        names.user_id,
        anonymous_ids,
        names.legacy_id,
        duplicate_of,
    )


def write_events_parquet(
    path: Path,
    customers: int = 5000,
    months: int = 12,
    seed: int = 7,
    end: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
    chunk_customers: int = 20_000,
) -> GenerationSummary:
    """Write the event stream to one Parquet file and the latent truth beside it; return counts.

    The truth (one row per customer: typology, intended journey, peak and final level, churn)
    goes to `path.with_suffix(".truth.parquet")`. Each chunk of customers is written as its own
    row groups, so memory is bounded by `chunk_customers`, not the population.
    `progress(done_customers, total_customers)` is called after each chunk.
    """
    path = Path(path)
    truth_path = path.with_suffix(".truth.parquet")
    events = anonymous = never = 0
    by_name: Counter[str] = Counter()
    with (
        pq.ParquetWriter(path, EVENT_SCHEMA, compression="zstd") as writer,
        pq.ParquetWriter(truth_path, TRUTH_SCHEMA, compression="zstd") as truth_writer,
    ):
        done = 0
        for cohort, batch in _chunks(customers, months, seed, end, chunk_customers):
            writer.write_batch(batch, row_group_size=_ROW_GROUP_ROWS)
            truth_writer.write_table(_truth(cohort))
            events += batch.num_rows
            identified_later, never_identified = _count_anonymous(cohort, batch)
            anonymous += identified_later
            never += never_identified
            names = pc.coalesce(batch.column("event"), batch.column("type"))
            for entry in pc.value_counts(names).to_pylist():
                by_name[entry["values"]] += entry["counts"]
            done += len(cohort)
            if progress is not None:
                progress(done, customers)
    return GenerationSummary(
        customers, events, anonymous, dict(sorted(by_name.items())), never_identified=never
    )


def _count_anonymous(cohort: Cohort, batch: pa.RecordBatch) -> tuple[int, int]:
    """Return how many of the chunk's customers browsed anonymously and then identified, and
    how many browsed anonymously and never identified in the period."""
    anonymous_only = pc.is_null(batch.column("userId"))
    ids = pc.unique(pc.filter(batch.column("anonymousId"), anonymous_only))
    web = pc.is_in(cohort.names.anonymous_web, value_set=ids).to_numpy(zero_copy_only=False)
    app = pc.fill_null(pc.is_in(cohort.names.anonymous_app, value_set=ids), False)
    browsed = web | app.to_numpy(zero_copy_only=False)
    identified = cohort.population.identified_at < cohort.period.end
    return int((browsed & identified).sum()), int((browsed & ~identified).sum())
