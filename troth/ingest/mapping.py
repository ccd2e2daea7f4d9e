"""Column mappings: which column of an imported table becomes which field of a Segment call.

A mapping is data only; `troth.store.bulk` turns it into SQL. Field names are Segment's
(camelCase top-level fields) or a dotted path under `properties.`, `traits.` or `context.`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from troth.config import MappingSettings
from troth.errors import ConfigError
from troth.events.model import CALL_TYPES

__all__ = [
    "FIELD_KINDS",
    "NESTED_ROOTS",
    "TOP_LEVEL_FIELDS",
    "FieldKind",
    "FieldMapping",
    "TableMapping",
    "check_mapping",
    "mapping_from_settings",
    "parse_map_options",
    "segment_mapping",
]

FieldKind = Literal["string", "number", "integer", "boolean", "timestamp", "json"]
FIELD_KINDS: tuple[str, ...] = get_args(FieldKind)

TOP_LEVEL_FIELDS: tuple[str, ...] = (
    "type",
    "messageId",
    "userId",
    "anonymousId",
    "previousId",
    "groupId",
    "event",
    "name",
    "channel",
    "timestamp",
    "originalTimestamp",
    "sentAt",
    "properties",
    "traits",
    "context",
    "integrations",
)
# Objects whose keys may be filled one column at a time (`properties.revenue`).
NESTED_ROOTS: tuple[str, ...] = ("properties", "traits", "context")


def _check_field(field: str, kind: str | None) -> None:
    """Raise ValueError unless `field` is a Segment field or path and `kind` fits it."""
    root, dot, path = field.partition(".")
    if not dot:
        if field not in TOP_LEVEL_FIELDS:
            raise ValueError(
                f"unknown field '{field}'; expected one of {', '.join(TOP_LEVEL_FIELDS)}, "
                "or a path such as properties.revenue, traits.email or context.channel"
            )
        if kind is not None:
            # Top-level fields have one meaning each (userId is text, timestamp a time…).
            raise ValueError(
                f"field '{field}' takes no kind ':{kind}'; kinds apply to properties./traits./"
                "context. paths"
            )
        return
    if root not in NESTED_ROOTS:
        raise ValueError(
            f"field '{field}': only {', '.join(NESTED_ROOTS)} have sub-fields "
            "(e.g. properties.revenue)"
        )
    if not path or any(not part for part in path.split(".")):
        raise ValueError(f"field '{field}' has an empty path segment")
    if kind is not None and kind not in FIELD_KINDS:
        raise ValueError(f"unknown kind '{kind}'; expected one of {', '.join(FIELD_KINDS)}")


@dataclass(frozen=True)
class FieldMapping:
    """One column read into one Segment field, cast to `kind` when given (nested fields only)."""

    column: str
    field: str
    kind: FieldKind | None = None

    def __post_init__(self) -> None:
        if not self.column:
            raise ValueError("a mapping needs a column name")
        _check_field(self.field, self.kind)


@dataclass(frozen=True)
class TableMapping:
    """How every row of a table becomes a call: mapped columns plus a fixed event and type.

    Built freely (the CLI merges options into one); `check_mapping` says whether it is usable.
    """

    fields: tuple[FieldMapping, ...]
    event: str | None = None
    type: str | None = None

    def columns(self) -> tuple[str, ...]:
        """Return the distinct source columns the mapping reads, in mapping order."""
        return tuple(dict.fromkeys(mapping.column for mapping in self.fields))


def check_mapping(mapping: TableMapping) -> None:
    """Raise ValueError, saying what to change, unless the mapping can build Segment calls."""
    if mapping.type is not None and mapping.type not in CALL_TYPES:
        raise ValueError(
            f"type '{mapping.type}' is unknown; expected one of {', '.join(sorted(CALL_TYPES))}"
        )
    if mapping.event is not None and not mapping.event.strip():
        raise ValueError("event must not be empty")
    seen: dict[str, str] = {}
    for field in mapping.fields:
        # Two columns feeding one field would make the result depend on their order.
        if field.field in seen:
            raise ValueError(
                f"field '{field.field}' is mapped from both '{seen[field.field]}' "
                f"and '{field.column}'"
            )
        seen[field.field] = field.column
    for field in seen:
        # `properties.a` and `properties.a.b` cannot both be set: one would overwrite the other.
        if "." in field and any(other.startswith(field + ".") for other in seen):
            raise ValueError(f"field '{field}' and a path below it are both mapped")
    if mapping.type is None and mapping.event is None and "type" not in seen:
        raise ValueError(
            "the mapping gives no call type: give an event (track calls, e.g. --event "
            "'Order Completed'), a type (--type identify), or map a column to type"
        )


def _parse_spec(column: str, spec: str) -> FieldMapping:
    """Return the FieldMapping of `column` to `field[:kind]`."""
    field, colon, kind = spec.strip().partition(":")
    field = field.strip()
    if not field:
        raise ValueError(f"column '{column}' is mapped to an empty field")
    if colon and kind.strip() not in FIELD_KINDS:
        raise ValueError(
            f"unknown kind '{kind.strip()}' for column '{column}'; expected one of "
            f"{', '.join(FIELD_KINDS)}"
        )
    return FieldMapping(column, field, kind.strip() if colon else None)  # type: ignore[arg-type]


def parse_map_options(options: Sequence[str]) -> tuple[FieldMapping, ...]:
    """Return the mappings of `--map column=field[:kind]` options, raising ValueError if bad."""
    mappings = []
    for option in options:
        # Split on the last '=': fields never contain one, column names might.
        column, equals, spec = option.rpartition("=")
        if not equals:
            raise ValueError(f"--map '{option}' is not of the form column=field[:kind]")
        if not column.strip():
            raise ValueError(f"--map '{option}' names no column")
        mappings.append(_parse_spec(column.strip(), spec))
    return tuple(mappings)


def mapping_from_settings(settings: MappingSettings) -> TableMapping:
    """Return the TableMapping a `[mapping.NAME]` section describes, raising ConfigError if bad."""
    try:
        fields = tuple(_parse_spec(column, spec) for column, spec in settings.columns.items())
        mapping = TableMapping(fields, event=settings.event, type=settings.type)
        check_mapping(mapping)
    except ValueError as exc:
        raise ConfigError(f"mapping: {exc}") from exc
    return mapping


def segment_mapping(columns: Sequence[str]) -> TableMapping:
    """Return the identity mapping of a Segment-shaped table: columns named like fields."""
    fields = []
    for column in columns:
        root, dot, path = column.partition(".")
        if (not dot and column in TOP_LEVEL_FIELDS) or (
            dot and root in NESTED_ROOTS and path and "" not in path.split(".")
        ):
            fields.append(FieldMapping(column, column))
    if not any(mapping.field == "type" for mapping in fields):
        raise ValueError(
            "the file has no `type` column, so its rows are not Segment calls: map its columns "
            "with --map column=field (and give an event or a type)"
        )
    return TableMapping(tuple(fields))
