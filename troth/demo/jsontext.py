"""JSON object text built column-wise with Arrow string kernels (no per-row Python)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["Value", "boolean", "integer", "json_object", "number", "pick", "quoted"]

# An encoded JSON value: a string column of JSON texts, or one JSON text for every row.
Value = pa.Array | str


def quoted(values: pa.Array | str) -> Value:
    """Return values as JSON strings; they must not need escaping (no quotes or backslashes)."""
    if isinstance(values, str):
        return f'"{values}"'
    return pc.binary_join_element_wise('"', values, '"', "")


def pick(vocabulary: Sequence[str], positions: np.ndarray) -> pa.Array:
    """Return the vocabulary entries at `positions` as a string column (not yet quoted)."""
    return pa.array(vocabulary, pa.string()).take(np.asarray(positions, dtype=np.int64))


def number(values: np.ndarray, decimals: int = 2) -> pa.Array:
    """Return floats rounded to `decimals` as JSON numbers."""
    return pc.cast(pa.array(np.round(np.asarray(values, dtype=np.float64), decimals)), pa.string())


def integer(values: np.ndarray) -> pa.Array:
    """Return integers as JSON numbers."""
    return pc.cast(pa.array(np.asarray(values, dtype=np.int64)), pa.string())


def boolean(values: np.ndarray) -> pa.Array:
    """Return booleans as JSON true/false."""
    return pc.if_else(pa.array(np.asarray(values, dtype=bool)), "true", "false")


def json_object(
    fields: Mapping[str, Value],
    optional: Mapping[str, tuple[Value, np.ndarray]] | None = None,
) -> pa.Array:
    """Return one JSON object text per row from encoded `fields` (at least one, all rows).

    `optional` fields appear only in rows where their mask is true.
    """
    if not fields:
        raise ValueError("a JSON object needs at least one field present in every row")
    parts: list[Value] = []
    for position, (key, value) in enumerate(fields.items()):
        parts.extend(["{" if position == 0 else ",", f'"{key}":', value])
    for key, (value, mask) in (optional or {}).items():
        present = pc.binary_join_element_wise(f',"{key}":', value, "")
        parts.append(pc.if_else(pa.array(np.asarray(mask, dtype=bool)), present, ""))
    parts.append("}")
    arrays = [part for part in parts if isinstance(part, pa.Array)]
    if not arrays:
        raise ValueError("at least one field must vary per row; give arrays, not only texts")
    # Adjacent literal parts are merged so Arrow joins fewer columns.
    merged: list[Value] = []
    for part in parts:
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] += part
        else:
            merged.append(part)
    return pc.binary_join_element_wise(*merged, "")
