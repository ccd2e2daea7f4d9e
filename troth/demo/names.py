"""The identifiers and personal details of demo customers, as Arrow string columns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from troth.demo.jsontext import json_object, pick, quoted
from troth.demo.period import NEVER
from troth.demo.population import PLANS, Population
from troth.demo.randomness import RandomStream
from troth.demo.vocabulary import (
    COMPANY_INDUSTRIES,
    COMPANY_WORDS,
    FIRST_NAMES,
    LAST_NAMES,
    TIMEZONES,
)

__all__ = ["Names", "format_user_ids", "name_companies", "name_customers"]

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_NIBBLE_SHIFTS = np.arange(60, -1, -4, dtype=np.uint64)
_FIRST_PHONE = 7700_900_000  # Ofcom's drama range: +44 7700 900000 onwards is never assigned


@dataclass(frozen=True)
class Names:
    """Per-customer identifiers and traits (string columns, one element per customer)."""

    user_id: pa.Array  # the current userId ("u0000123")
    legacy_id: pa.Array  # the userId of a legacy system, null if none
    anonymous_web: pa.Array  # first device ("a-<16 hex>")
    anonymous_app: pa.Array  # second device, null without the app
    timezone: pa.Array  # IANA timezone name
    email: pa.Array
    traits: pa.Array  # identify traits as JSON object text
    context: pa.Array  # {"timezone": ...} as JSON object text, for calls whose local time matters


def format_user_ids(index: np.ndarray, prefix: str = "u") -> pa.Array:
    """Return userIds like "u0000123" for global customer numbers."""
    digits = pc.cast(pa.array(np.asarray(index, dtype=np.int64)), pa.string())
    return pc.binary_join_element_wise(prefix, pc.utf8_lpad(digits, width=7, padding="0"), "")


def _hex(bits: np.ndarray) -> pa.Array:
    """Return 64-bit values as 16 lowercase hex digits each."""
    nibbles = (bits[:, None] >> _NIBBLE_SHIFTS) & np.uint64(15)
    text = np.ascontiguousarray(_HEX[nibbles.astype(np.int64)]).view("S16").ravel()
    return pc.cast(pa.array(text, pa.binary()), pa.string())


def _anonymous_ids(seed: int, index: np.ndarray, device: int) -> pa.Array:
    """Return anonymousIds like "a-3f9c..." for one device of each customer."""
    bits = RandomStream(seed, "anonymousId").bits(index, lane=device)
    return pc.binary_join_element_wise("a-", _hex(bits), "")


def name_companies(seed: int, company: np.ndarray) -> tuple[pa.Array, pa.Array]:
    """Return (groupId, group traits JSON) for B2B company numbers."""
    stream = RandomStream(seed, "company")
    company = np.asarray(company, dtype=np.int64)
    word = pick(COMPANY_WORDS, stream.integers(company, len(COMPANY_WORDS), 0))
    suffix = pc.cast(pa.array(company), pa.string())
    employees = np.rint(np.exp(3.0 + 1.5 * stream.normal(company, 1))).astype(np.int64) + 1
    traits = json_object(
        {
            "name": quoted(pc.binary_join_element_wise(word, " ", suffix, " Ltd", "")),
            "industry": quoted(
                pick(COMPANY_INDUSTRIES, stream.integers(company, len(COMPANY_INDUSTRIES), 2))
            ),
            "employees": pc.cast(pa.array(employees), pa.string()),
        }
    )
    group_id = pc.binary_join_element_wise("g", pc.utf8_lpad(suffix, width=5, padding="0"), "")
    return group_id, traits


def name_customers(seed: int, population: Population) -> Names:
    """Return the Names of a Population; duplicate accounts reuse their original's details."""
    index = population.index
    person = np.where(population.duplicate_of >= 0, population.duplicate_of, index)
    stream = RandomStream(seed, "person")
    first = pick(FIRST_NAMES, stream.integers(person, len(FIRST_NAMES), 0))
    last = pick(LAST_NAMES, stream.integers(person, len(LAST_NAMES), 1))
    digits = pc.cast(pa.array(person), pa.string())
    email = pc.binary_join_element_wise(first, ".", last, digits, "@example.com", "")
    phone_digits = pc.cast(pa.array(_FIRST_PHONE + person), pa.string())
    phone = pc.binary_join_element_wise(
        "+44 ",
        pc.utf8_slice_codeunits(phone_digits, 0, 4),
        " ",
        pc.utf8_slice_codeunits(phone_digits, 4),
        "",
    )
    first_cap, last_cap = pc.utf8_capitalize(first), pc.utf8_capitalize(last)
    identified = population.identified_at < NEVER
    created = pa.array(np.where(identified, population.identified_at, 0), pa.timestamp("us", "UTC"))
    created_text = pc.strftime(
        pc.cast(pc.floor_temporal(created, unit="second"), pa.timestamp("s", "UTC")),
        format="%Y-%m-%dT%H:%M:%SZ",
    )
    group_id, _ = name_companies(seed, np.maximum(population.company, 0))
    traits = json_object(
        {
            "email": quoted(email),
            "name": quoted(pc.binary_join_element_wise(first_cap, " ", last_cap, "")),
            "first_name": quoted(first_cap),
            "last_name": quoted(last_cap),
            "plan": quoted(pick(PLANS, population.plan)),
            "created_at": quoted(created_text),
        },
        optional={
            "phone": (quoted(phone), population.has_phone),
            "company_id": (quoted(group_id), population.company >= 0),
        },
    )
    legacy = population.legacy_until > population.identified_at
    timezone = pick([name for name, _ in TIMEZONES], population.timezone)
    return Names(
        user_id=format_user_ids(index),
        legacy_id=pc.if_else(
            pa.array(legacy), format_user_ids(index, "crm-"), pa.scalar(None, pa.string())
        ),
        anonymous_web=_anonymous_ids(seed, index, 1),
        anonymous_app=pc.if_else(
            pa.array(population.has_app),
            _anonymous_ids(seed, index, 2),
            pa.scalar(None, pa.string()),
        ),
        timezone=timezone,
        email=email,
        traits=traits,
        context=json_object({"timezone": quoted(timezone)}),
    )
