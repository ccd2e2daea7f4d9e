"""The SQL of a bulk import: one SELECT that checks and normalises every row of a table file.

Each check mirrors a rule of `troth.events.model.normalize_call` (a property test holds them to
it), as a CASE over the whole file instead of Python once per call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from troth.events.model import CALL_TYPES, MAX_EVENT_BYTES, MAX_MESSAGE_ID_CHARS
from troth.events.schema import EVENT_COLUMNS

__all__ = ["FieldSource", "ImportQuery", "ident", "literal"]

_COLUMNS = ", ".join(EVENT_COLUMNS)


class FieldSource(Protocol):
    """A column read into a Segment field (`troth.ingest.mapping.FieldMapping` is one)."""

    @property
    def column(self) -> str: ...
    @property
    def field(self) -> str: ...
    @property
    def kind(self) -> str | None: ...


def literal(text: str) -> str:
    """Return `text` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def ident(name: str) -> str:
    """Return `name` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


_SPACE = (
    r"[\s\x{0b}\x{1c}-\x{1f}\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}"
    r"\x{205f}\x{3000}]*"
)
_TYPES_TEXT = ", ".join(sorted(CALL_TYPES))
_KIND_NAMES = {"number": "a number", "integer": "an integer", "boolean": "a boolean",
               "timestamp": "an ISO 8601 date-time", "json": "valid JSON"}  # fmt: skip
_INTEGERS = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT"}
_INTEGERS |= {"U" + name for name in _INTEGERS}
_TEXTS = ("type", "messageId", "event", "name", "channel")
_IDS = ("userId", "anonymousId", "previousId", "groupId")
_TIMES = ("timestamp", "originalTimestamp", "sentAt")
_OBJECTS = ("properties", "traits", "context", "integrations")


def _blank(sql: str) -> str:
    """Return SQL true when the text `sql` is empty or whitespace only."""
    # Testing the first character first keeps the regular expression off ordinary values.
    return f"((ascii({sql}) <= 32 OR ascii({sql}) >= 133) AND regexp_full_match({sql}, '{_SPACE}'))"


def _family(sql_type: str) -> str:
    """Return how a DuckDB column type is read: text, integer, boolean, time, object or other."""
    if sql_type in ("VARCHAR", "JSON"):
        return "text"
    if sql_type in _INTEGERS:
        return "integer"
    if sql_type.startswith(("TIMESTAMP", "DATE")):
        return "time"
    if sql_type.startswith(("STRUCT", "MAP")):
        return "object"
    return "boolean" if sql_type == "BOOLEAN" else "other"


def _json_object(tree: dict) -> str:
    """Return SQL building a JSON object from a nested {key: SQL value or subtree} dict."""
    pairs = ", ".join(
        f"{literal(key)}, {_json_object(value) if isinstance(value, dict) else value}"
        for key, value in tree.items()
    )
    return f"json_object({pairs})"


def _quoted(sql: str) -> str:
    """Return SQL quoting (the start of) a value for a reject reason."""
    return f"'''' || left(CAST({sql} AS VARCHAR), 80) || ''''"


@dataclass(frozen=True)
class _Check:
    """A reason to refuse a row: SQL true when it applies, the reason as SQL, the field."""

    condition: str
    reason: str
    field: str | None = None


def _refuse(condition: str, reason: str, field: str | None) -> _Check:
    """Return a check whose reason is fixed text."""
    return _Check(condition, literal(reason), field)


class ImportQuery:
    """The SQL turning a table's rows into checked events, rule for rule as normalize_call.

    `checked(source)` adds to each source row its parsed fields (`__t_*`) and the number of the
    first check it fails (`__t_err`, 0 when valid); `insert` and `rejects` read that relation.
    """

    def __init__(
        self,
        types: dict[str, str],
        fields: Sequence[FieldSource],
        event: str | None,
        call_type: str | None,
        received_at: datetime,
        source_id: str,
        origin: str,
    ) -> None:
        self._types = types
        self._received = f"TIMESTAMPTZ '{received_at.isoformat()}'"
        self._source_id, self._origin = literal(source_id), literal(origin)
        self._parsed: dict[str, str] = {}  # alias (after `__t_`) -> SQL over a source row
        self._decode: list[_Check] = []  # refusals of msgspec's decoding step, in field order
        self._patches: dict[str, dict] = {}  # root -> {key: SQL or subtree} from flat columns
        top = {f.field: f.column for f in fields if "." not in f.field}
        self.has_message_id = "messageId" in top
        defaults = {"type": call_type or ("track" if event else None), "event": event}
        for name in (*_TEXTS, *_IDS, *_TIMES):
            self._parse(name, top.get(name), defaults.get(name))
        for index, mapping in enumerate(f for f in fields if "." in f.field):
            self._nested(index, mapping)
        for name in _OBJECTS:
            self._object(name, top.get(name))

    def _column(self, column: str) -> tuple[str, str]:
        """Return a source column as SQL, and its family."""
        sql_type = self._types[column]
        if sql_type == "UUID" or sql_type.startswith("ENUM"):
            return f"CAST({ident(column)} AS VARCHAR)", "text"
        return ident(column), _family(sql_type)

    def _refuse_type(self, column: str, field: str, expected: str) -> None:
        """Refuse rows whose column, of a type the field cannot hold, has a value."""
        reason = f"{field} must be {expected}, not {self._types[column]}"
        self._decode.append(_refuse(f"{ident(column)} IS NOT NULL", reason, field))

    def _parse(self, name: str, column: str | None, default: str | None) -> None:
        """Parse a text, identifier or time field as msgspec decodes it for normalize_call."""
        value = "NULL::TIMESTAMPTZ" if name in _TIMES else "NULL::VARCHAR"
        if column is not None:
            sql, family = self._column(column)
            if name in _TIMES and family in ("time", "text"):
                value = self._parse_time(sql, family)
                if family == "text":
                    reason = f"'{name} ' || {_quoted(sql)} || ' is not an ISO 8601 date-time'"
                    failed = f"{sql} IS NOT NULL AND __t_{name} IS NULL"
                    self._decode.append(_Check(failed, reason, name))
            elif name in _IDS and family == "text":  # a blank identifier counts as absent
                value = f"CASE WHEN {_blank(sql)} THEN NULL ELSE {sql} END"
            elif name in _IDS and family == "integer":  # numbers become strings
                value = f"CAST({sql} AS VARCHAR)"
            elif name in _TEXTS and family == "text":
                value = sql
            elif name in _IDS:
                self._refuse_type(column, name, "a string or an integer")
            else:
                self._refuse_type(column, name, "a timestamp" if name in _TIMES else "a string")
        if default is not None:
            value = f"coalesce({value}, {literal(default)})"
        self._parsed[name] = value

    @staticmethod
    def _parse_time(sql: str, family: str) -> str:
        """Return SQL reading a column as TIMESTAMPTZ, NULL when it does not parse.

        Text is read as ISO 8601: RFC 3339 as normalize_call reads it, and also a bare date
        (midnight UTC), the usual `date` column of a transactions table.
        """
        if family == "time":  # a time without zone is taken as UTC, the session's zone
            return f"CAST({sql} AS TIMESTAMPTZ)"
        return f"coalesce(TRY_CAST({sql} AS TIMESTAMPTZ), TRY_CAST(upper({sql}) AS TIMESTAMPTZ))"

    def _nested(self, index: int, mapping: FieldSource) -> None:
        """Parse a column feeding one key of properties/traits/context, cast to its kind."""
        sql, family = self._column(mapping.column)
        kind, alias = mapping.kind, f"__t_n{index}"
        if kind in ("number", "integer", "boolean", "timestamp") and family != "text":
            sql, family = f"CAST({sql} AS VARCHAR)", "text"  # one parser for every source type
        text = family == "text"
        trim = f"trim({sql})"
        value = {
            None: sql,
            "string": f"CAST({sql} AS VARCHAR)",
            "number": f"TRY_CAST({trim} AS DOUBLE)",
            "boolean": f"TRY_CAST({trim} AS BOOLEAN)",
            "timestamp": f"strftime({self._parse_time(sql, family)}, '%Y-%m-%dT%H:%M:%S.%fZ')",
            "json": f"CASE WHEN json_valid({sql}) THEN json({sql}) END"
            if text
            else f"to_json({sql})",
            # DuckDB rounds '1.5' to 2 when casting text to BIGINT, so check the digits first.
            "integer": rf"CASE WHEN regexp_full_match({trim}, '[+-]?[0-9]+(\.0*)?') THEN "
            f"TRY_CAST({trim} AS BIGINT) END",
        }[kind]
        if kind is not None and kind != "string":
            failed = f"{alias} IS NULL" + (f" OR NOT isfinite({alias})" if kind == "number" else "")
            present = f"{sql} IS NOT NULL"
            if text:  # an empty cell is a missing value, not a bad one
                value = f"CASE WHEN {_blank(sql)} THEN NULL ELSE {value} END"
                present += f" AND NOT {_blank(sql)}"
            name = literal(f"column {mapping.column}: ")
            reason = f"{name} || {_quoted(sql)} || ' is not {_KIND_NAMES[kind]}'"
            self._decode.append(_Check(f"{present} AND ({failed})", reason, mapping.field))
        self._parsed[f"n{index}"] = value
        root, *path = mapping.field.split(".")
        node = self._patches.setdefault(root, {})
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = alias

    def _object(self, name: str, column: str | None) -> None:
        """Parse a JSON-object field: its text, and the JSON types of it and of its channel."""
        text, kinds, paths = "NULL::VARCHAR", "NULL::VARCHAR[]", "['$', '$.channel']"
        if column is not None:
            sql, family = self._column(column)
            if family == "text":
                text = sql
                kinds = (
                    f"CASE WHEN {sql} IS NULL OR {_blank(sql)} THEN NULL ELSE "
                    f"coalesce(TRY(json_type({sql}, {paths})), ['INVALID']) END"
                )
            elif family == "object":  # Parquet structs and maps
                text = f"CAST(to_json({sql}) AS VARCHAR)"
                kinds = f"json_type(to_json({sql}), {paths})"
            else:
                kinds = f"CASE WHEN {sql} IS NOT NULL THEN ['{self._types[column]}'] END"
        self._parsed[f"{name}_text"] = text
        self._parsed[f"{name}_kinds"] = kinds

    def _object_value(self, name: str) -> str:
        """Return SQL of the stored JSON text of an object field, flat columns merged in."""
        value = f"CASE WHEN __t_{name}_kinds[1] = 'OBJECT' THEN __t_{name}_text END"
        patch = self._patches.get(name)
        if not patch:
            return value
        # A merge patch drops keys whose value is null: empty cells add no key.
        merged = f"json_merge_patch(coalesce({value}, '{{}}'), {_json_object(patch)})"
        return f"CASE WHEN {value} IS NULL AND {merged} = '{{}}' THEN NULL ELSE {merged} END"

    def _channel(self, name: str) -> str:
        """Return SQL of the `channel` key of an object field, spelt as Python's str() does."""
        kind = f"__t_{name}_kinds[2]"
        value = f"json_extract_string(__t_{name}_text, '$.channel')"
        direct = (
            f"CASE WHEN {kind} IN ('BIGINT', 'UBIGINT', 'DOUBLE', 'VARCHAR') THEN {value} "
            f"WHEN {kind} = 'BOOLEAN' THEN CASE WHEN {value} = 'true' THEN 'True' ELSE 'False' "
            "END END"
        )
        flat = self._patches.get(name, {}).get("channel")
        return f"coalesce(CAST({flat} AS VARCHAR), {direct})" if isinstance(flat, str) else direct

    def _checks(self) -> list[_Check]:
        """Return every check, in the order normalize_call applies them."""
        call = "__t_type"
        size = f"'event is about ' || __t_size || ' bytes; the limit is {MAX_EVENT_BYTES} bytes'"
        unknown = f"'type ' || {_quoted(call)} || ' is unknown; expected one of: {_TYPES_TEXT}'"
        checks = [
            _Check(f"__t_size > {MAX_EVENT_BYTES}", f"{size} || ' (32 KB)'"),
            *self._decode,
            _refuse(f"{call} IS NULL", f"type is required (one of: {_TYPES_TEXT})", "type"),
            _Check(
                f"{call} NOT IN ({', '.join(map(literal, sorted(CALL_TYPES)))})", unknown, "type"
            ),
            *(
                _refuse(f"length(__t_{i}) > 1000", f"{i} is longer than 1000 characters", i)
                for i in _IDS
            ),
            _refuse(
                "__t_userId IS NULL AND __t_anonymousId IS NULL",
                "userId or anonymousId is required",
                "userId",
            ),
            _refuse(
                f"{call} = 'track' AND (__t_event IS NULL OR {_blank('__t_event')})",
                "a track call needs a non-empty event name",
                "event",
            ),
            _refuse(
                f"{call} = 'alias' AND __t_previousId IS NULL",
                "an alias call needs previousId",
                "previousId",
            ),
            _refuse(
                f"{call} = 'alias' AND __t_userId IS NULL", "an alias call needs userId", "userId"
            ),
            _refuse(
                f"{call} = 'group' AND __t_groupId IS NULL", "a group call needs groupId", "groupId"
            ),
        ]
        for name in _OBJECTS:
            kinds = f"__t_{name}_kinds"
            not_object = f"'{name} must be a JSON object, not ' || lower({kinds}[1])"
            checks += [
                _refuse(f"{kinds}[1] = 'INVALID'", f"{name} is not valid JSON", name),
                _Check(f"{kinds}[1] NOT IN ('OBJECT', 'NULL')", not_object, name),
            ]
        limit = MAX_MESSAGE_ID_CHARS
        too_long = f"'messageId is ' || length(__t_mid) || ' characters; the limit is {limit}'"
        return [*checks, _Check(f"length(__t_mid) > {limit}", too_long, "messageId")]

    def checked(self, source: str) -> str:
        """Return the SELECT adding parsed fields, event values and `__t_err` to `source`."""
        parsed = ", ".join(f"{sql} AS __t_{alias}" for alias, sql in self._parsed.items())
        # normalize_call measures the call's JSON; this adds up its parts, keys included.
        parts = [f"coalesce(strlen(__t_{n}) + {len(n) + 6}, 0)" for n in (*_TEXTS, *_IDS)]
        parts += [f"coalesce(strlen(__t_{n}_text) + {len(n) + 4}, 0)" for n in _OBJECTS]
        parts += [f"CASE WHEN __t_{n} IS NULL THEN 0 ELSE {len(n) + 36} END" for n in _TIMES]
        recv = self._received
        derived = {
            "size": " + ".join(parts),
            "mid": f"CASE WHEN {_blank('__t_messageId')} THEN NULL ELSE __t_messageId END",
            "channel_value": f"coalesce(nullif({self._channel('properties')}, ''), "
            f"nullif({self._channel('context')}, ''), __t_channel)",
            # Segment corrects the client's clock skew with sentAt, and so does normalize_call.
            "time": f"coalesce(__t_timestamp, CASE WHEN __t_sentAt IS NULL THEN "
            f"__t_originalTimestamp ELSE {recv} - (__t_sentAt - __t_originalTimestamp) END, "
            f"{recv})",
            **{f"{name}_value": self._object_value(name) for name in _OBJECTS},
        }
        values = ", ".join(f"{sql} AS __t_{alias}" for alias, sql in derived.items())
        checks = " ".join(f"WHEN {c.condition} THEN {n}" for n, c in enumerate(self._checks(), 1))
        return (
            f"SELECT *, CASE {checks} ELSE 0 END AS __t_err FROM "
            f"(SELECT *, {values} FROM (SELECT *, {parsed} FROM {source}))"
        )

    def _event_values(self, message_id: str) -> str:
        """Return the SELECT list of one event row, in EVENT_COLUMNS order."""
        values = [
            message_id,
            "__t_type",
            "CASE WHEN __t_type = 'track' THEN __t_event END",
            "CASE WHEN __t_type IN ('page', 'screen') THEN __t_name END",
            *(f"__t_{name}" for name in _IDS),
            "__t_time",
            "__t_originalTimestamp",
            "__t_sentAt",
            self._received,
            "__t_channel_value",
            self._source_id,
            *(f"__t_{name}_value" for name in _OBJECTS),
        ]
        return ", ".join(f"{sql} AS {col}" for sql, col in zip(values, EVENT_COLUMNS, strict=True))

    @staticmethod
    def _nodes() -> list[str]:
        """Return SQL of each identifier node a checked row carries, as tombstones name them."""

        def trait(name: str) -> str:
            return (
                f"lower(trim(coalesce(json_extract_string(__t_traits_value, '$.{name}'), "
                f"json_extract_string(__t_context_value, '$.traits.{name}'))))"
            )

        phone = f"nullif(regexp_replace({trait('phone')}, '[^0-9+]', '', 'g'), '')"
        return [
            "'user_id:' || __t_userId",
            "'anonymous_id:' || __t_anonymousId",
            "'user_id:' || __t_previousId",
            "'anonymous_id:' || __t_previousId",
            f"'email:' || nullif({trait('email')}, '')",
            f"'phone:' || {phone}",
        ]

    def tombstoned_nodes(self, checked: str, key_name: str) -> str:
        """Return the SELECT of nodes of `checked` that are tombstoned: node, node_hash.

        Each distinct node is hashed once: a file names far fewer identifiers than it has rows.
        """
        key = f"(SELECT value FROM secrets WHERE name = {literal(key_name)})"
        distinct = " UNION ".join(
            f"SELECT DISTINCT {node} AS node FROM {checked}" for node in self._nodes()
        )
        return (
            f"SELECT d.node, t.node_hash FROM ({distinct}) d "
            f"JOIN tombstones t ON t.node_hash = sha256({key} || d.node)"
        )

    def tombstoned_rows(self, checked: str, hits: str) -> str:
        """Return the SELECT of rows carrying a node of `hits`: `__troth_row`, `node_hash`, and
        `grants` (a valid `Consent Updated` granting consent: stored, and lifts the tombstone)."""
        nodes = self._nodes()
        carries = " OR ".join(f"{node} IN (SELECT node FROM {hits})" for node in nodes)
        grants = (
            "(__t_err = 0 AND __t_type = 'track' AND __t_event = 'Consent Updated' AND "
            "CAST(json_extract(__t_properties_value, '$.granted') AS VARCHAR) = 'true')"
        )
        return (
            "SELECT DISTINCT n.__troth_row, h.node_hash, n.grants FROM "
            f"(SELECT __troth_row, {grants} AS grants, unnest([{', '.join(nodes)}]) AS node "
            f"FROM {checked} WHERE {carries}) n JOIN {hits} h USING (node)"
        )

    def insert(
        self,
        checked: str,
        generate: bool,
        *,
        anti_join: bool,
        dedupe: bool,
        suppressed: str | None = None,
    ) -> str:
        """Return the INSERT of the valid rows of `checked` whose messageId is not stored yet.

        `suppressed` names a relation of `__troth_row`s left out (erased people's events).
        """
        rows, message_id = f"SELECT * FROM {checked} WHERE __t_err = 0", "__t_mid"
        if suppressed is not None:  # a hash anti-join: NOT IN plans a slower mark join
            rows = (
                f"SELECT c.* FROM {checked} c ANTI JOIN {suppressed} s "
                "ON c.__troth_row = s.__troth_row WHERE c.__t_err = 0"
            )
        if generate:
            # Hash what the row says (not the import time) so a re-import finds the same ids;
            # number identical rows so that two equal purchases on one day both stay.
            said = [f"__t_{n}" for n in ("type", *_IDS, "event", "name", *_TIMES, "channel")]
            said += [f"__t_{n}_value" for n in _OBJECTS]
            content = ", ".join(f"CAST({sql} AS VARCHAR)" for sql in said)
            hashed = f"CASE WHEN __t_mid IS NULL THEN md5(to_json([{content}])) END AS __t_hash"
            rows = (
                "SELECT *, row_number() OVER (PARTITION BY __t_hash ORDER BY __troth_row) "
                f"AS __t_nth FROM (SELECT *, {hashed} FROM ({rows}))"
            )
            number = "CASE WHEN __t_nth > 1 THEN '-' || __t_nth ELSE '' END"
            message_id = f"coalesce(__t_mid, 'troth-' || __t_hash || {number})"
        sql = (
            f"INSERT INTO events ({_COLUMNS}) SELECT {_COLUMNS} FROM "
            f"(SELECT {self._event_values(message_id)}, __troth_row FROM ({rows})) x"
        )
        if anti_join:  # a plain hash anti-join; NOT EXISTS would plan a costlier delim join
            sql += " ANTI JOIN events e ON e.message_id = x.message_id"
        if dedupe:
            sql += " QUALIFY row_number() OVER (PARTITION BY message_id ORDER BY __troth_row) = 1"
        return sql if anti_join else sql + " ON CONFLICT DO NOTHING"

    def rejects(self, checked: str, suppressed: str | None = None) -> str:
        """Return the SELECT of refused rows: row number, reason, field, messageId and data.

        Rows in `suppressed` (erased people's) are left out: keeping them would keep the data.
        """
        where = "__t_err > 0"
        if suppressed is not None:
            where += f" AND __troth_row NOT IN (SELECT __troth_row FROM {suppressed})"
        checks = list(enumerate(self._checks(), 1))
        reasons = " ".join(f"WHEN {n} THEN {c.reason}" for n, c in checks)
        fields = " ".join(f"WHEN {n} THEN {literal(c.field)}" for n, c in checks if c.field)
        data = ", ".join(f"{literal(name)}: {ident(name)}" for name in self._types)
        return (
            f'SELECT __troth_row AS "row", CASE __t_err {reasons} END AS reason, '
            f"CASE __t_err {fields} END AS field, CAST(__t_messageId AS VARCHAR) AS message_id, "
            f"to_json({{{data}}}) AS data FROM {checked} WHERE {where}"
        )

    def record_rejects(self, table: str) -> str:
        """Return the INSERT copying the refused rows of `table` into the rejects table."""
        return (
            "INSERT INTO rejects (rejected_at, origin, message_id, field, reason, payload) "
            f"SELECT {self._received}, {self._origin}, message_id, field, reason, "
            f"CAST(data AS VARCHAR) FROM {table}"
        )
