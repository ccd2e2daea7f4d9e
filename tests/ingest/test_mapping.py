"""Column mappings: `--map column=field[:kind]` options and `[mapping.NAME]` sections."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from troth.config import MappingSettings
from troth.errors import ConfigError
from troth.ingest.mapping import (
    FIELD_KINDS,
    NESTED_ROOTS,
    TOP_LEVEL_FIELDS,
    FieldMapping,
    TableMapping,
    check_mapping,
    mapping_from_settings,
    parse_map_options,
    segment_mapping,
)

USER = FieldMapping("a", "userId")


def test_parse_the_transactions_example() -> None:
    options = ["customer_id=userId", "date=timestamp", "amount=properties.revenue:number"]
    assert parse_map_options(options) == (
        FieldMapping("customer_id", "userId"),
        FieldMapping("date", "timestamp"),
        FieldMapping("amount", "properties.revenue", "number"),
    )


def test_a_column_name_may_hold_an_equals_sign() -> None:
    assert parse_map_options(["a=b = traits.email "]) == (FieldMapping("a=b", "traits.email"),)


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("customer_id", "is not of the form column=field"),
        ("=userId", "names no column"),
        ("customer_id=", "mapped to an empty field"),
        ("customer_id=user", "unknown field 'user'; expected one of type, messageId, userId"),
        ("amount=revenue.total", "only properties, traits, context have sub-fields"),
        ("amount=properties.", "empty path segment"),
        ("amount=properties..x", "empty path segment"),
        ("amount=properties.revenue:money", "unknown kind 'money'.*number"),
        ("customer_id=userId:number", "takes no kind"),
    ],
)
def test_parse_errors_say_what_is_wrong(option: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_map_options([option])


_NAMES = st.text(st.characters(blacklist_characters="=:\n", codec="utf-8"), min_size=1).filter(
    lambda name: name.strip() == name and name.strip()
)


@given(
    column=_NAMES,
    root=st.sampled_from(NESTED_ROOTS),
    path=st.lists(_NAMES.filter(lambda p: "." not in p), min_size=1, max_size=3),
    kind=st.sampled_from([None, *FIELD_KINDS]),
)
def test_parse_round_trips_nested_fields(
    column: str, root: str, path: list[str], kind: str | None
) -> None:
    field = ".".join([root, *path])
    option = f"{column}={field}" + (f":{kind}" if kind else "")
    assert parse_map_options([option]) == (FieldMapping(column, field, kind),)  # type: ignore[arg-type]


@given(st.sampled_from(TOP_LEVEL_FIELDS))
def test_every_top_level_field_parses(field: str) -> None:
    assert parse_map_options([f"c={field}"]) == (FieldMapping("c", field),)


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        (
            TableMapping((USER, FieldMapping("b", "userId")), event="X"),
            "mapped from both 'a' and 'b'",
        ),
        (TableMapping((USER,)), "no call type"),
        (TableMapping((USER,), type="purchase"), "type 'purchase' is unknown"),
        (TableMapping((USER,), event=" "), "event must not be empty"),
        (
            TableMapping(
                (USER, FieldMapping("b", "properties.a"), FieldMapping("c", "properties.a.b")),
                event="X",
            ),
            "a path below it",
        ),
    ],
)
def test_check_mapping_refuses(mapping: TableMapping, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_mapping(mapping)


def test_one_column_may_feed_two_fields() -> None:
    # The email is both the user id and a trait.
    both = TableMapping((USER, FieldMapping("a", "traits.email")), type="identify")
    check_mapping(both)
    assert both.columns() == ("a",)


def test_mapping_from_settings() -> None:
    settings = MappingSettings(
        columns={"customer_id": "userId", "amount": "properties.revenue:number"},
        event="Order Completed",
    )
    assert mapping_from_settings(settings) == TableMapping(
        (
            FieldMapping("customer_id", "userId"),
            FieldMapping("amount", "properties.revenue", "number"),
        ),
        event="Order Completed",
    )
    with pytest.raises(ConfigError, match="unknown field 'revenue'"):
        mapping_from_settings(MappingSettings(columns={"amount": "revenue"}, event="X"))


def test_segment_mapping_reads_fields_named_like_segment() -> None:
    mapping = segment_mapping(["messageId", "type", "userId", "properties.revenue", "notes", "x.y"])
    assert [f.field for f in mapping.fields] == [
        "messageId",
        "type",
        "userId",
        "properties.revenue",
    ]
    with pytest.raises(ValueError, match="no `type` column"):
        segment_mapping(["customer_id", "amount"])
