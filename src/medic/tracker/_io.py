"""Export and import of the whole record as JSON Lines.

One object per row with a ``type`` field, written in an order that lets an
import replay it (issues before the hashes and events that point at them,
incidents before their timelines). Both directions stream: export reads with a
server-side cursor in one read snapshot, import writes in one transaction, so an
import either lands whole or changes nothing. Into an empty store the ids are
kept; into a store that already holds rows, each row is matched by its natural
key (a row already there is skipped, which makes importing the same file twice
harmless) and new rows get new ids, with references rewritten.

Memory: export holds one batch of rows. Import holds the id maps of issues and
incidents (and of events when merging into a non-empty store), never the rows.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any, Protocol, TextIO

from sqlalchemy import Boolean, Connection, Double, Integer, String, Table, select, text
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from medic.errors import InvalidInput
from medic.tracker import _tables as t
from medic.tracker._engine import HEAD_REVISION, translate
from medic.tracker._record import dumps
from medic.tracker._tracker import Tracker

__all__ = [
    "EXPORT_FORMAT",
    "ROW_TYPES",
    "ImportFailed",
    "ImportResult",
    "export_record",
    "import_record",
]

EXPORT_FORMAT = "medic-export"
EXPORT_VERSION = 1
MAX_LINE = 4 * 1024 * 1024
MAX_REPORTED_ERRORS = 20
BATCH = 500

# (row type, table, order); the order is the replay order.
_ORDER: tuple[tuple[str, Table, tuple[str, ...]], ...] = (
    ("issue", t.issues, ("id",)),
    ("issue_hash", t.issue_hashes, ("issue_id", "grouping_version", "hash")),
    ("incident", t.incidents, ("id",)),
    ("incident_issue", t.incident_issues, ("incident_id", "issue_id")),
    ("event", t.events, ("id",)),
    ("timeline", t.timeline, ("id",)),
    ("recovery_attempt", t.recovery_attempts, ("id",)),
    ("postmortem", t.postmortems, ("incident_id",)),
    ("action_item", t.action_items, ("id",)),
    ("notification", t.notifications, ("id",)),
)
ROW_TYPES = tuple(name for name, _, _ in _ORDER)
_TABLES = {name: table for name, table, _ in _ORDER}
# Text columns holding JSON: exported as JSON values so the file reads naturally.
_JSON_COLUMNS = {
    "issue": {"related_files", "related_issues", "grouping_inputs"},
    "issue_hash": {"inputs"},
    "incident": {"roles", "related"},
    "event": {"tags", "exception"},
    "timeline": {"details"},
    "recovery_attempt": {"evidence"},
    "postmortem": {"authors"},
}
# A column whose name would collide with the row's own `type` field.
_RENAMED = {"action_item": {"type": "item_type"}}


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What an import did: rows added and rows already present, per row type."""

    inserted: dict[str, int]
    skipped: dict[str, int]
    kept_ids: bool


class ImportFailed(InvalidInput):
    """Some lines could not be imported; nothing was written. `errors` name the lines."""

    def __init__(self, errors: list[str], total: int) -> None:
        self.errors = errors
        self.total = total
        shown = f", the first {len(errors)} listed" if total > len(errors) else ""
        super().__init__(f"import refused: {total} bad line(s){shown}; nothing was imported")


# -- export --------------------------------------------------------------------------


def export_record(tracker: Tracker, out: TextIO, *, batch: int = 1000) -> dict[str, int]:
    """Write every row of the store to `out`, one JSON object per line; returns counts."""
    counts = dict.fromkeys(ROW_TYPES, 0)
    out.write(
        _line(
            {
                "type": "header",
                "format": EXPORT_FORMAT,
                "version": EXPORT_VERSION,
                "schema": HEAD_REVISION,
            }
        )
    )
    try:
        with tracker.db.read() as conn:
            for name, row in _rows(conn, batch):
                out.write(_line(row))
                counts[name] += 1
    except SQLAlchemyError as exc:
        raise translate(exc, tracker.url) from exc
    return counts


def _rows(conn: Connection, batch: int) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, table, order in _ORDER:
        json_cols = _JSON_COLUMNS.get(name, set())
        renamed = _RENAMED.get(name, {})
        query = select(table).order_by(*(table.c[c] for c in order))
        result = conn.execution_options(yield_per=batch).execute(query)
        for row in result:
            out: dict[str, Any] = {"type": name}
            for key, value in row._mapping.items():
                if key in json_cols and value is not None:
                    value = json.loads(value)
                out[renamed.get(key, key)] = value
            yield name, out


def _line(obj: dict[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False) + "\n"


# -- import --------------------------------------------------------------------------


class Readable(Protocol):
    """A binary stream read line by line (a file, stdin's buffer)."""

    def readline(self, size: int = -1, /) -> bytes: ...


def read_lines(stream: Readable, *, limit: int) -> Iterator[tuple[int, bytes | None, int]]:
    """(number, line, bytes consumed) from a binary stream; a line over `limit` bytes comes
    back as None and is skipped, never held in memory whole (a hostile file is not a DoS).
    """
    number = 0
    while True:
        line = stream.readline(limit + 1)
        if not line:
            return
        number += 1
        if len(line) > limit and not line.endswith(b"\n"):
            consumed = len(line)
            while line and not line.endswith(b"\n"):
                line = stream.readline(1 << 16)
                consumed += len(line)
            yield number, None, consumed
            continue
        yield number, line, len(line)


def import_record(
    tracker: Tracker, lines: IO[bytes] | Iterable[str] | Iterable[bytes]
) -> ImportResult:
    """Replay an export into the store in one transaction; raises ImportFailed on bad lines.

    `lines` is a binary file (read with bounded memory) or any iterable of lines.
    """
    numbered: Iterable[tuple[int, str | bytes | None]]
    if isinstance(lines, io.BufferedIOBase | io.RawIOBase):
        numbered = ((n, raw) for n, raw, _ in read_lines(lines, limit=MAX_LINE))
    else:
        numbered = enumerate(lines, start=1)
    try:
        with tracker.db.write() as conn:
            importer = _Importer(conn, keep_ids=_is_empty(conn))
            for number, raw in numbered:
                importer.line(number, raw)
            importer.finish()
            if importer.errors_total:
                raise ImportFailed(importer.errors, importer.errors_total)
            return ImportResult(importer.inserted, importer.skipped, importer.keep_ids)
    except SQLAlchemyError as exc:
        raise translate(exc, tracker.url) from exc


def _is_empty(conn: Connection) -> bool:
    return all(
        conn.execute(select(table.c[order[0]]).limit(1)).first() is None
        for _, table, order in _ORDER
    )


class _Importer:
    """Validates, remaps and inserts rows; keeps going after an error to report every bad line."""

    def __init__(self, conn: Connection, *, keep_ids: bool) -> None:
        self.conn = conn
        self.keep_ids = keep_ids
        self.inserted = dict.fromkeys(ROW_TYPES, 0)
        self.skipped = dict.fromkeys(ROW_TYPES, 0)
        self.errors: list[str] = []
        self.errors_total = 0
        self.maps: dict[str, dict[int, int]] = {"issue": {}, "incident": {}, "event": {}}
        self.deferred: list[tuple[int, str, int, int]] = []  # line, type, new id, old target
        self.open_keys: set[str] = set()
        self.stage = 0
        self.header_seen = False
        # Into an empty store rows are inserted in batches (one statement per batch); a
        # batch that fails is replayed row by row to name the lines at fault.
        self.pending: list[tuple[int, dict[str, Any]]] = []
        self.pending_table: Table | None = None
        self.number = 0

    def error(self, number: int, message: str) -> None:
        self.errors_total += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(f"line {number}: {message}")

    def line(self, number: int, raw: str | bytes | None) -> None:
        if raw is None:
            self.error(number, f"longer than {MAX_LINE} bytes")
            return
        if isinstance(raw, bytes):
            try:
                raw = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                self.error(number, f"not UTF-8 ({exc.reason} at byte {exc.start})")
                return
        if not raw.strip():
            return
        if len(raw) > MAX_LINE:
            self.error(number, f"{len(raw)} characters; the limit is {MAX_LINE}")
            return
        try:
            obj = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            self.error(number, f"not valid JSON: {exc}")
            return
        try:
            self.row(number, obj)
        except InvalidInput as exc:
            self.error(number, str(exc))
        except IntegrityError as exc:
            self.error(number, f"conflicts with the store: {getattr(exc, 'orig', exc)}")

    def row(self, number: int, obj: Any) -> None:
        if not isinstance(obj, dict):
            raise InvalidInput("expected a JSON object")
        kind = obj.get("type")
        if kind == "header":
            self._header(obj)
            return
        if kind not in _TABLES:
            raise InvalidInput(
                f"type: unknown row type {str(kind)[:40]!r}; expected header or "
                + ", ".join(ROW_TYPES)
            )
        stage = ROW_TYPES.index(kind)
        if stage < self.stage:
            raise InvalidInput(
                f"{kind} row after {ROW_TYPES[self.stage]} rows; an export lists "
                + " → ".join(ROW_TYPES)
            )
        self.stage = stage
        values = _values(kind, obj)
        self.number = number
        if self.keep_ids:
            getattr(self, f"_{kind}")(number, values)
            return
        # After an error rows are still written, so later lines are checked against them
        # too; the transaction is rolled back at the end. A savepoint per row: a constraint
        # the checks missed fails this line, not the transaction (PostgreSQL refuses every
        # statement after an error otherwise).
        with self.conn.begin_nested():
            getattr(self, f"_{kind}")(number, values)

    def _header(self, obj: dict[str, Any]) -> None:
        if obj.get("format") != EXPORT_FORMAT:
            raise InvalidInput(f"header: format must be {EXPORT_FORMAT!r}")
        if obj.get("version") != EXPORT_VERSION:
            raise InvalidInput(
                f"header: export version {obj.get('version')!r}; this medic reads {EXPORT_VERSION}"
            )
        self.header_seen = True

    # -- per type -----------------------------------------------------------------

    def _map(self, kind: str, old: Any, what: str) -> int:
        if old is None:
            raise InvalidInput(f"{what}: required")
        mapped = self.maps[kind].get(old)
        if mapped is None:
            raise InvalidInput(f"{what}: {kind} {old} is not in the file before this line")
        return mapped

    def _insert(self, table: Table, values: dict[str, Any]) -> int:
        if self.keep_ids:
            self._put(table, values)
            return int(values["id"])
        values.pop("id")
        new = self.conn.execute(table.insert().returning(table.c.id), values).scalar_one()
        return int(new)

    def _put(self, table: Table, values: dict[str, Any]) -> None:
        """Insert now, or (into an empty store) queue for the next batch."""
        if not self.keep_ids:
            self.conn.execute(table.insert(), values)
            return
        if self.pending_table is not table or len(self.pending) >= BATCH:
            self.flush()
        self.pending_table = table
        self.pending.append((self.number, values))

    def flush(self) -> None:
        table, rows = self.pending_table, self.pending
        self.pending = []
        if table is None or not rows:
            return
        by_shape: dict[tuple[str, ...], list[tuple[int, dict[str, Any]]]] = {}
        for number, values in rows:
            by_shape.setdefault(tuple(values), []).append((number, values))
        for group in by_shape.values():
            try:
                with self.conn.begin_nested():
                    self.conn.execute(table.insert(), [values for _, values in group])
            except IntegrityError:
                for number, values in group:
                    try:
                        with self.conn.begin_nested():
                            self.conn.execute(table.insert(), values)
                    except IntegrityError as exc:
                        self.error(number, f"conflicts with the store: {getattr(exc, 'orig', exc)}")

    def _existing(self, table: Table, **where: Any) -> int | None:
        query = select(table.c.id)
        for key, value in where.items():
            col = table.c[key]
            query = query.where(col.is_(None) if value is None else col == value)
        row = self.conn.execute(query.limit(1)).first()
        return None if row is None else int(row[0])

    def _issue(self, number: int, v: dict[str, Any]) -> None:
        old, merged = v["id"], v.pop("merged_into", None)
        found = None
        if not self.keep_ids:
            found = self._existing(
                t.issues,
                service=v["service"],
                first_seen=v["first_seen"],
                grouping_variant=v["grouping_variant"],
                grouping_inputs=v["grouping_inputs"],
                title=v["title"],
            )
        self._add("issue", old, found, t.issues, v)
        if merged is not None and found is None:
            self.deferred.append((number, "issue", self.maps["issue"][old], merged))

    def _issue_hash(self, number: int, v: dict[str, Any]) -> None:
        v["issue_id"] = self._map("issue", v["issue_id"], "issue_id")
        h = t.issue_hashes.c
        if (
            not self.keep_ids
            and self.conn.execute(
                select(h.issue_id).where(
                    h.hash == v["hash"], h.grouping_version == v["grouping_version"]
                )
            ).first()
        ):
            self.skipped["issue_hash"] += 1
            return
        self._put(t.issue_hashes, v)
        self.inserted["issue_hash"] += 1

    def _incident(self, number: int, v: dict[str, Any]) -> None:
        old, merged = v["id"], v.pop("merged_into", None)
        related = v.get("related")
        found = None
        if not self.keep_ids:
            found = self._existing(
                t.incidents, dedup_key=v["dedup_key"], triggered_at=v["triggered_at"]
            )
        if found is None and v.get("is_open"):
            key = v["dedup_key"]
            clash = key in self.open_keys or (
                not self.keep_ids
                and self._existing(t.incidents, dedup_key=key, is_open=True) is not None
            )
            if clash:
                raise InvalidInput(f"an open incident with dedup key {key!r} already exists")
            self.open_keys.add(key)
        if related and isinstance(related, str):
            ids = json.loads(related)
            v["related"] = dumps([self.maps["incident"].get(i, i) for i in ids])
        self._add("incident", old, found, t.incidents, v)
        if merged is not None and found is None:
            self.deferred.append((number, "incident", self.maps["incident"][old], merged))

    def _add(self, kind: str, old: int, found: int | None, table: Table, v: dict[str, Any]) -> None:
        if found is not None:
            self.maps[kind][old] = found
            self.skipped[kind] += 1
            return
        self.maps[kind][old] = self._insert(table, v)
        self.inserted[kind] += 1

    def _incident_issue(self, number: int, v: dict[str, Any]) -> None:
        v["incident_id"] = self._map("incident", v["incident_id"], "incident_id")
        v["issue_id"] = self._map("issue", v["issue_id"], "issue_id")
        c = t.incident_issues.c
        if (
            not self.keep_ids
            and self.conn.execute(
                select(c.incident_id).where(
                    c.incident_id == v["incident_id"], c.issue_id == v["issue_id"]
                )
            ).first()
        ):
            self.skipped["incident_issue"] += 1
            return
        self._put(t.incident_issues, v)
        self.inserted["incident_issue"] += 1

    def _event(self, number: int, v: dict[str, Any]) -> None:
        old = v["id"]
        v["issue_id"] = self._ref("issue", v.get("issue_id"), "issue_id")
        v["incident_id"] = self._ref("incident", v.get("incident_id"), "incident_id")
        found = None
        if self.keep_ids:
            pass  # an empty store holds nothing to match; a repeat within the file is refused
        elif v.get("external_id") is not None:
            found = self._existing(t.events, source=v["source"], external_id=v["external_id"])
        else:
            found = self._existing(
                t.events,
                occurred_at=v["occurred_at"],
                received_at=v["received_at"],
                source=v["source"],
                service=v["service"],
                message=v["message"],
            )
        if found is not None:
            if not self.keep_ids:
                self.maps["event"][old] = found
            self.skipped["event"] += 1
            return
        new = self._insert(t.events, v)
        if not self.keep_ids:
            self.maps["event"][old] = new
        self.inserted["event"] += 1

    def _ref(self, kind: str, old: Any, what: str) -> int | None:
        return None if old is None else self._map(kind, old, what)

    def _timeline(self, number: int, v: dict[str, Any]) -> None:
        v["incident_id"] = self._ref("incident", v.get("incident_id"), "incident_id")
        v["issue_id"] = self._ref("issue", v.get("issue_id"), "issue_id")
        if v.get("event_id") is not None and not self.keep_ids:
            v["event_id"] = self.maps["event"].get(v["event_id"])
        found = None
        if not self.keep_ids:
            found = self._existing(
                t.timeline,
                incident_id=v["incident_id"],
                issue_id=v["issue_id"],
                at=v["at"],
                kind=v["kind"],
                message=v["message"],
            )
        self._plain("timeline", found, t.timeline, v)

    def _plain(self, kind: str, found: int | None, table: Table, v: dict[str, Any]) -> None:
        if found is not None:
            self.skipped[kind] += 1
            return
        self._insert(table, v)
        self.inserted[kind] += 1

    def _recovery_attempt(self, number: int, v: dict[str, Any]) -> None:
        v["incident_id"] = self._map("incident", v["incident_id"], "incident_id")
        found = None
        if not self.keep_ids:
            found = self._existing(
                t.recovery_attempts,
                incident_id=v["incident_id"],
                action=v["action"],
                attempt=v["attempt"],
                started_at=v["started_at"],
            )
        self._plain("recovery_attempt", found, t.recovery_attempts, v)

    def _postmortem(self, number: int, v: dict[str, Any]) -> None:
        v["incident_id"] = self._map("incident", v["incident_id"], "incident_id")
        c = t.postmortems.c
        if (
            not self.keep_ids
            and self.conn.execute(
                select(c.incident_id).where(c.incident_id == v["incident_id"])
            ).first()
        ):
            self.skipped["postmortem"] += 1
            return
        self._put(t.postmortems, v)
        self.inserted["postmortem"] += 1

    def _action_item(self, number: int, v: dict[str, Any]) -> None:
        v["incident_id"] = self._map("incident", v["incident_id"], "incident_id")
        found = None
        if not self.keep_ids:
            found = self._existing(
                t.action_items,
                incident_id=v["incident_id"],
                text=v["text"],
                created_at=v["created_at"],
            )
        self._plain("action_item", found, t.action_items, v)

    def _notification(self, number: int, v: dict[str, Any]) -> None:
        v["incident_id"] = self._map("incident", v["incident_id"], "incident_id")
        found = None
        if not self.keep_ids:
            found = self._existing(
                t.notifications,
                incident_id=v["incident_id"],
                channel=v["channel"],
                target=v["target"],
                sent_at=v["sent_at"],
            )
        self._plain("notification", found, t.notifications, v)

    def finish(self) -> None:
        """Point merged issues and incidents at their survivors, now that all exist."""
        self.flush()
        for number, kind, new_id, old_target in self.deferred:
            target = self.maps[kind].get(old_target)
            if target is None:
                self.error(number, f"merged_into: {kind} {old_target} is not in the file")
                continue
            table = t.issues if kind == "issue" else t.incidents
            self.conn.execute(table.update().where(table.c.id == new_id).values(merged_into=target))
        if self.conn.dialect.name == "postgresql":
            for name in (
                "issues",
                "incidents",
                "events",
                "timeline",
                "recovery_attempts",
                "action_items",
                "notifications",
            ):
                self.conn.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                        f"COALESCE((SELECT MAX(id) FROM {name}), 1), "
                        f"(SELECT MAX(id) FROM {name}) IS NOT NULL)"
                    )
                )


def _values(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    """Check one row against its table's columns and turn it into insertable values."""
    table = _TABLES[kind]
    renamed = _RENAMED.get(kind, {})
    back = {v: k for k, v in renamed.items()}
    json_cols = _JSON_COLUMNS.get(kind, set())
    keys = set(obj) - {"type"}
    known = {renamed.get(c.name, c.name) for c in table.columns}
    unknown = keys - known
    if unknown:
        raise InvalidInput(
            f"{kind}: unknown field(s) {', '.join(sorted(repr(k)[:40] for k in unknown))}"
        )
    out: dict[str, Any] = {}
    for key in keys:
        column = table.c[back.get(key, key)]
        value = obj[key]
        if column.name in json_cols:
            value = None if value is None else dumps(value)
        out[column.name] = _check(kind, column.name, column, value)
    for column in table.columns:
        if column.name in out:
            continue
        if column.primary_key or (not column.nullable and column.server_default is None):
            raise InvalidInput(f"{kind}: {renamed.get(column.name, column.name)}: required")
    return out


def _check(kind: str, name: str, column: Any, value: Any) -> Any:
    where = f"{kind}: {name}"
    if value is None:
        if not column.nullable or column.primary_key:
            raise InvalidInput(f"{where}: must not be null")
        return None
    ctype = column.type
    if isinstance(ctype, Boolean):
        if not isinstance(value, bool):
            raise InvalidInput(f"{where}: expected true or false")
    elif isinstance(ctype, Integer):
        if not isinstance(value, int) or isinstance(value, bool) or abs(value) >= 2**31:
            raise InvalidInput(f"{where}: expected an integer")
    elif isinstance(ctype, Double):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidInput(f"{where}: expected a number")
        try:
            value = float(value)
        except OverflowError:
            value = math.inf
        if not math.isfinite(value):
            raise InvalidInput(f"{where}: expected a finite number")
    elif isinstance(ctype, String):
        if not isinstance(value, str):
            raise InvalidInput(f"{where}: expected a string")
        if ctype.length is not None and len(value) > ctype.length:
            raise InvalidInput(f"{where}: longer than {ctype.length} characters")
        if "\x00" in value:
            raise InvalidInput(f"{where}: holds a NUL character")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInput(f"{where}: not valid Unicode") from None
    return value
