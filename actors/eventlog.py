"""The durable, append-only event log of the live twin.

Every transition of every event (one :class:`twin.workflow.AuditRecord`) is appended here
before the live twin acknowledges it; :func:`twin.workflow.replay` over :meth:`EventLog.records`
rebuilds every event after a crash. Beside the records the log keeps what the API must not
lose on a restart: idempotency keys with their responses, bearer-token hashes, evidence
(photo uploads) and small settings.

Two backends share every statement but a few dialect details:

* :class:`SQLiteEventLog`: one file (WAL, ``synchronous=FULL``), for a laptop or one host;
  several processes may open the same file, their appends are serialized by SQLite.
* :class:`PostgresEventLog`: PostgreSQL through psycopg 3, for a deployment.

:func:`open_log` picks one from a URL or a path.

Global sequence numbers are assigned under the database's write lock (SQLite's
``BEGIN IMMEDIATE``; a table lock in PostgreSQL) as ``max + 1``, so they are gap-free and
in commit order: a reader that tails the log with ``records(since=last_seen)`` never skips
a record that commits later with a smaller number.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Protocol, Self

from twin.errors import TwinError, ValidationError
from twin.urls import mask_password
from twin.workflow import AuditRecord

#: Version of the tables below; stored in ``schema_version`` when a log is created.
SCHEMA_VERSION = 1

#: The spellings :func:`open_log` accepts, for error messages.
ACCEPTED_FORMS = ("postgresql://user:password@host:port/dbname, postgres://..., sqlite:///relative/path.db, "
                  "sqlite:////absolute/path.db, a plain file path, or :memory:")

# The schema, in the shared dialect: {JSON}, {BLOB}, {FLOAT} and {BIGINT} are the
# backend's column types. ``gseq`` is the global sequence number.
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
    """CREATE TABLE IF NOT EXISTS audit_log (
        gseq {BIGINT} PRIMARY KEY,
        event_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        at {FLOAT} NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        from_state TEXT,
        to_state TEXT NOT NULL,
        reason TEXT NOT NULL,
        data {JSON} NOT NULL,
        UNIQUE (event_id, seq))""",
    "CREATE INDEX IF NOT EXISTS audit_log_at ON audit_log (at)",
    """CREATE TABLE IF NOT EXISTS idempotency (
        key TEXT NOT NULL,
        principal TEXT NOT NULL,
        request_hash TEXT NOT NULL,
        response {JSON} NOT NULL,
        PRIMARY KEY (key, principal))""",
    """CREATE TABLE IF NOT EXISTS tokens (
        token_hash TEXT PRIMARY KEY,
        role TEXT NOT NULL,
        member_id TEXT,
        name TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS evidence (
        id TEXT PRIMARY KEY,
        event_id TEXT NOT NULL,
        content_type TEXT NOT NULL,
        data {BLOB} NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS evidence_event ON evidence (event_id)",
    """CREATE TABLE IF NOT EXISTS settings (
        key TEXT PRIMARY KEY,
        value {JSON} NOT NULL)""",
)

_RECORD_COLUMNS = "gseq, event_id, seq, at, actor, action, from_state, to_state, reason, {data}"


class DuplicateRecord(TwinError):
    """An append would store a record, or an idempotency key, that the log already holds.

    Nothing of the batch was written.

    Args:
        event_id: The event of the duplicate record (``None`` for an idempotency key).
        seq: The record's per-event sequence number (``None`` for an idempotency key).
        key: The idempotency key already stored, if that is the duplicate.
        principal: Who the key belongs to.
    """

    def __init__(self, event_id: str | None, seq: int | None, key: str | None = None,
                 principal: str | None = None) -> None:
        self.event_id = event_id
        self.seq = seq
        self.key = key
        self.principal = principal
        super().__init__(event_id, seq, key, principal)  # args rebuild the error (pickling, Ray)

    def __str__(self) -> str:
        if self.key is not None:
            what = f"idempotency key '{self.key}' of '{self.principal}' is already stored"
        else:
            what = f"record {self.event_id}#{self.seq} is already in the log (event_id and seq must be unique)"
        return f"{what}; nothing of the batch was written"


class _Cursor(Protocol):
    """What both drivers' cursors offer (DB-API 2)."""

    @property
    def rowcount(self) -> int: ...

    def execute(self, query: Any, params: Any = ..., /) -> Any: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


_mask_password = mask_password  # (the name this module's callers and tests know)


class JsonText(str):
    """Text the caller has already encoded as a JSON object (e.g. an API answer that is also
    sent as it is): stored without encoding it again."""


def _json_text(value: Any, field: str) -> str:
    """``value`` as JSON text, or a :class:`ValidationError` naming ``field``."""
    if isinstance(value, JsonText):
        if not value.startswith("{"):
            raise ValidationError(field, "pre-encoded JSON must be an object")
        text = str(value)
    else:
        try:
            text = _ENCODER.encode(value)
        except (TypeError, ValueError) as err:
            raise ValidationError(field, f"must be JSON (strings, numbers, booleans, null, lists, objects): "
                                  f"{err}") from None
    if "\\u0000" in text and _JSON_NUL.search(text):  # PostgreSQL cannot store it; refused by both alike
        raise ValidationError(field, "must not contain the NUL character (U+0000)")
    return text


#: An escaped NUL in JSON text: ``\u0000`` after an even number of backslashes.
_JSON_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


def _jsonable(value: Any) -> Any:
    """JSON for the few non-JSON types that hold JSON (nested read-only mappings)."""
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} {value!r:.80} is not JSON")


#: One encoder for every write (building one per call costs as much as a small record).
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=_jsonable)


def _text(value: str, field: str) -> str:
    """``value`` if it is a string a database can store, or a :class:`ValidationError` naming ``field``."""
    if not isinstance(value, str):
        raise ValidationError(field, f"must be a string, got {type(value).__name__}")
    if "\x00" in value:
        raise ValidationError(field, "must not contain the NUL character (U+0000)")
    return value


class EventLog(ABC):
    """The append-only log of audit records, plus the API's durable small state.

    A log is safe to share between threads: writes go through one connection under one lock,
    reads through a second connection under another, so a read never waits for a write's
    fsync (both backends give readers the last committed state). Use it as a context
    manager, or call :meth:`close`.

    Attributes:
        url: What the log was opened with (may hold a password: print :attr:`safe_url`).
    """

    url: str

    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.Lock()  # the write connection
        self._rlock = threading.Lock()  # the read connection
        self._closed = False

    # --- dialect ------------------------------------------------------------------------------

    #: Column types of the schema.
    _types: ClassVar[Mapping[str, str]]
    #: Placeholder of a JSON parameter, and how a JSON column is read back as text.
    _json_param = "?"
    _json_read = "{col}"
    #: Run first in the transaction of an append (serializes appends), or of schema creation.
    _append_lock_sql: str | None = None
    _schema_lock_sql: str | None = None

    @abstractmethod
    def _sql(self, query: str) -> str:
        """``query`` (with ``?`` placeholders) in the backend's parameter style."""

    @abstractmethod
    @contextmanager
    def _transaction(self) -> Iterator[_Cursor]:
        """A cursor inside one write transaction that holds the database's write lock;
        committed (durably) when the block ends, rolled back if it raises."""

    @abstractmethod
    @contextmanager
    def _reading(self) -> Iterator[_Cursor]:
        """A cursor for single-statement reads (each statement sees the committed state)."""

    @abstractmethod
    def _unique_violation(self, err: BaseException) -> str | None:
        """If ``err`` is the driver's unique-constraint violation, the constraint's name or
        columns (text that names the table's columns, e.g. ``event_id``); else ``None``."""

    @abstractmethod
    def _close_connection(self) -> None:
        """Close the driver connection."""

    # --- shared -------------------------------------------------------------------------------

    @property
    def safe_url(self) -> str:
        """:attr:`url` with the password masked, for logs and messages."""
        return _mask_password(self.url)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.safe_url!r})"

    def _check_open(self) -> None:
        if self._closed:
            raise TwinError(f"the event log {self.safe_url} is closed")

    def _create_schema(self) -> None:
        """Create the tables if they are missing and check the schema version."""
        with self._transaction() as cur:
            if self._schema_lock_sql:
                cur.execute(self._schema_lock_sql)
            for statement in _SCHEMA:
                cur.execute(statement.format(**self._types))
            cur.execute("SELECT version FROM schema_version")
            rows = cur.fetchall()
            if not rows:
                cur.execute(self._sql("INSERT INTO schema_version (version) VALUES (?)"), (SCHEMA_VERSION,))
            elif int(rows[0][0]) > SCHEMA_VERSION:
                raise ValidationError("db", f"{self.safe_url} has schema version {rows[0][0]}, newer than "
                                      f"this code understands ({SCHEMA_VERSION}); upgrade streetbrain")

    def append(self, records: Sequence[AuditRecord], *,
               idempotency: tuple[str, str, str, dict[str, Any]] | None = None) -> list[int]:
        """Append records atomically, durable before this returns.

        Args:
            records: The audit records, in order (a request's transitions).
            idempotency: ``(key, principal, request_hash, response)``: stored in the same
                transaction as the records, so a retried request finds its response exactly
                when its records are durable.

        Returns:
            The global sequence numbers assigned, in the order of ``records`` (1-based,
            gap-free, in commit order).

        Raises:
            DuplicateRecord: a record's ``(event_id, seq)`` is already in the log or twice in
                the batch, or the idempotency key is already stored; nothing was written.
            ValidationError: a record is not an :class:`AuditRecord`, or its data is not JSON.
        """
        return self.append_many([(records, idempotency)])[0]

    def append_many(self, batches: Sequence[tuple[Sequence[AuditRecord],
                                                  tuple[str, str, str, dict[str, Any]] | None]]) -> list[list[int]]:
        """Append several requests' records in ONE transaction (group commit: one fsync for
        all of them), each with its idempotency entry; all or nothing.

        Returns:
            The global sequence numbers of each batch's records.

        Raises:
            DuplicateRecord, ValidationError: as :meth:`append`; nothing of any batch was written.
        """
        prepared = [self._prepare(records, idem) for records, idem in batches]
        insert = self._sql("INSERT INTO audit_log (gseq, event_id, seq, at, actor, action, from_state, to_state, "
                           f"reason, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, {self._json_param})")
        out: list[list[int]] = []
        with self._transaction() as cur:
            if self._append_lock_sql:
                cur.execute(self._append_lock_sql)
            cur.execute("SELECT COALESCE(MAX(gseq), 0) FROM audit_log")
            last = int(cur.fetchone()[0])
            for rows, idem_row in prepared:
                assigned = []
                for row in rows:
                    last += 1
                    try:
                        cur.execute(insert, (last, *row))
                    except Exception as err:
                        if "event_id" in (self._unique_violation(err) or ""):
                            raise DuplicateRecord(row[0], row[1]) from None
                        raise
                    assigned.append(last)
                if idem_row is not None:
                    self._insert_idempotent(cur, idem_row, duplicate_ok=False)
                out.append(assigned)
        return out

    def _prepare(self, records: Sequence[AuditRecord], idempotency: tuple[str, str, str, dict[str, Any]] | None
                 ) -> tuple[list[tuple[Any, ...]], tuple[str, str, str, str] | None]:
        rows = []
        for i, rec in enumerate(records):
            if not isinstance(rec, AuditRecord):
                raise ValidationError(f"records[{i}]", f"must be an AuditRecord, got {type(rec).__name__}")
            rows.append((_text(rec.event_id, f"records[{i}].event_id"), int(rec.seq), float(rec.at),
                         _text(rec.actor, f"records[{i}].actor"), rec.action.value,
                         rec.from_state.value if rec.from_state is not None else None, rec.to_state.value,
                         _text(rec.reason, f"records[{i}].reason"), _json_text(rec.data, f"records[{i}].data")))
        idem_row = None
        if idempotency is not None:
            if not isinstance(idempotency, tuple | list) or len(idempotency) != 4:
                raise ValidationError("idempotency", "must be (key, principal, request_hash, response)")
            key, principal, request_hash, response = idempotency
            idem_row = (_text(key, "idempotency.key"), _text(principal, "idempotency.principal"),
                        _text(request_hash, "idempotency.request_hash"), _json_text(response, "idempotency.response"))
        return rows, idem_row

    def _insert_idempotent(self, cur: _Cursor, row: tuple[str, str, str, str], *, duplicate_ok: bool) -> None:
        sql = ("INSERT INTO idempotency (key, principal, request_hash, response) "
               f"VALUES (?, ?, ?, {self._json_param})")
        if duplicate_ok:
            sql += " ON CONFLICT (key, principal) DO NOTHING"
        try:
            cur.execute(self._sql(sql), row)
        except Exception as err:
            if "idempotency" in (self._unique_violation(err) or ""):
                raise DuplicateRecord(None, None, key=row[0], principal=row[1]) from None
            raise

    def transitions(self, since: int = 0, limit: int = 1000) -> list[tuple[int, str, str, str, float]]:
        """``(global seq, event id, action, to state, at)`` of the records after ``since``, in
        log order, at most ``limit``: what a follower that needs no record data reads."""
        with self._reading() as cur:
            cur.execute(self._sql("SELECT gseq, event_id, action, to_state, at FROM audit_log WHERE gseq > ? "
                                  "ORDER BY gseq LIMIT ?"), (int(since), int(limit)))
            return [(int(r[0]), str(r[1]), str(r[2]), str(r[3]), float(r[4])) for r in cur.fetchall()]

    def records(self, *, since: int = 0, event_id: str | None = None, until_at: float | None = None,
                limit: int | None = None, since_at: float | None = None) -> list[tuple[int, AuditRecord]]:
        """Records in log order.

        Args:
            since: Only records with a global sequence number greater than this (a reader's
                last seen number; 0: from the start).
            event_id: Only this event's records.
            until_at: Only records at or before this time (POSIX seconds): the state of the
                district at that moment.
            limit: At most this many records (the first ones).
            since_at: Only records at or after this time (POSIX seconds; indexed).

        Returns:
            ``(global seq, record)`` pairs, ordered by global seq.

        Raises:
            ValidationError: ``limit`` is negative.
        """
        where = ["gseq > ?"]
        params: list[Any] = [int(since)]
        if event_id is not None:
            where.append("event_id = ?")
            params.append(event_id)
        if until_at is not None:
            where.append("at <= ?")
            params.append(float(until_at))
        if since_at is not None:
            where.append("at >= ?")
            params.append(float(since_at))
        sql = (f"SELECT {_RECORD_COLUMNS.format(data=self._json_read.format(col='data'))} FROM audit_log "
               f"WHERE {' AND '.join(where)} ORDER BY gseq")
        if limit is not None:
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
                raise ValidationError("limit", f"must be a non-negative integer, got {limit!r}")
            sql += " LIMIT ?"
            params.append(limit)
        with self._reading() as cur:
            cur.execute(self._sql(sql), params)
            rows = cur.fetchall()
        return [(int(r[0]), AuditRecord.from_dict({
            "event_id": r[1], "seq": r[2], "at": r[3], "actor": r[4], "action": r[5], "from_state": r[6],
            "to_state": r[7], "reason": r[8], "data": json.loads(r[9])})) for r in rows]

    def last_seq(self) -> int:
        """The highest global sequence number (0 for an empty log)."""
        with self._reading() as cur:
            cur.execute("SELECT COALESCE(MAX(gseq), 0) FROM audit_log")
            return int(cur.fetchone()[0])

    def idempotent(self, key: str, principal: str) -> tuple[str, dict[str, Any]] | None:
        """The stored ``(request_hash, response)`` of an idempotency key, or ``None``."""
        with self._reading() as cur:
            cur.execute(self._sql(f"SELECT request_hash, {self._json_read.format(col='response')} FROM idempotency "
                                  "WHERE key = ? AND principal = ?"), (key, principal))
            row = cur.fetchone()
        return None if row is None else (str(row[0]), json.loads(row[1]))

    def idempotent_keys(self, pairs: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which of these ``(key, principal)`` pairs are stored (one query for all of them)."""
        if not pairs:
            return set()
        keys = sorted({k for k, _ in pairs})
        found: set[tuple[str, str]] = set()
        for i in range(0, len(keys), 500):
            part = keys[i:i + 500]
            with self._reading() as cur:
                cur.execute(self._sql("SELECT key, principal FROM idempotency WHERE key IN ("
                                      + ", ".join("?" * len(part)) + ")"), part)
                found.update((str(k), str(p)) for k, p in cur.fetchall())
        return found & set(pairs)

    def put_idempotent(self, key: str, principal: str, request_hash: str, response: dict[str, Any]) -> None:
        """Store an idempotency key for a request that writes no records.

        The first response stored for a key is kept: storing the key again changes nothing.

        Raises:
            ValidationError: ``response`` is not JSON.
        """
        row = (_text(key, "key"), _text(principal, "principal"), _text(request_hash, "request_hash"),
               _json_text(response, "response"))
        with self._transaction() as cur:
            self._insert_idempotent(cur, row, duplicate_ok=True)

    def put_token(self, token_hash: str, role: str, member_id: str | None, name: str) -> None:
        """Store (or replace) a credential: the hash of a bearer token and whom it stands for."""
        row = (_text(token_hash, "token_hash"), _text(role, "role"),
               None if member_id is None else _text(member_id, "member_id"), _text(name, "name"))
        with self._transaction() as cur:
            cur.execute(self._sql("INSERT INTO tokens (token_hash, role, member_id, name) VALUES (?, ?, ?, ?) "
                                  "ON CONFLICT (token_hash) DO UPDATE SET role = excluded.role, "
                                  "member_id = excluded.member_id, name = excluded.name"), row)

    def token(self, token_hash: str) -> tuple[str, str | None, str] | None:
        """``(role, member_id, name)`` of a token hash, or ``None``."""
        with self._reading() as cur:
            cur.execute(self._sql("SELECT role, member_id, name FROM tokens WHERE token_hash = ?"), (token_hash,))
            row = cur.fetchone()
        return None if row is None else (str(row[0]), None if row[1] is None else str(row[1]), str(row[2]))

    def delete_token(self, token_hash: str) -> bool:
        """Revoke a token. Returns whether it existed."""
        with self._transaction() as cur:
            cur.execute(self._sql("DELETE FROM tokens WHERE token_hash = ?"), (token_hash,))
            return bool(cur.rowcount > 0)

    def put_evidence(self, event_id: str, content_type: str, data: bytes | bytearray | memoryview) -> str:
        """Store a piece of evidence (a photo), addressed by its content.

        Storing the same bytes again stores nothing and returns the same id (the first
        upload's event and content type are kept).

        Returns:
            The evidence id, ``sha256:<hex digest of data>``.

        Raises:
            ValidationError: ``data`` is not bytes.
        """
        if not isinstance(data, bytes | bytearray | memoryview):
            raise ValidationError("data", f"must be bytes, got {type(data).__name__}")
        blob = bytes(data)
        evidence_id = "sha256:" + hashlib.sha256(blob).hexdigest()
        with self._transaction() as cur:
            cur.execute(self._sql("INSERT INTO evidence (id, event_id, content_type, data) VALUES (?, ?, ?, ?) "
                                  "ON CONFLICT (id) DO NOTHING"),
                        (evidence_id, _text(event_id, "event_id"), _text(content_type, "content_type"), blob))
        return evidence_id

    def evidence_of(self, event_id: str) -> list[tuple[str, str, int]]:
        """``(evidence id, content type, bytes)`` of everything stored for an event (reports'
        photos, camera records, uploads), in id order."""
        with self._reading() as cur:
            cur.execute(self._sql("SELECT id, content_type, LENGTH(data) FROM evidence WHERE event_id = ? ORDER BY id"),
                        (event_id,))
            return [(str(r[0]), str(r[1]), int(r[2])) for r in cur.fetchall()]

    def evidence(self, evidence_id: str) -> tuple[str, str, bytes] | None:
        """``(event_id, content_type, data)`` of a piece of evidence, or ``None``."""
        with self._reading() as cur:
            cur.execute(self._sql("SELECT event_id, content_type, data FROM evidence WHERE id = ?"), (evidence_id,))
            row = cur.fetchone()
        return None if row is None else (str(row[0]), str(row[1]), bytes(row[2]))

    def put_setting(self, key: str, value: dict[str, Any]) -> None:
        """Store (or replace) a small setting that must survive restarts.

        Raises:
            ValidationError: ``value`` is not a JSON object.
        """
        if not isinstance(value, dict):
            raise ValidationError(f"settings.{key}", f"must be a dict (a JSON object), got {type(value).__name__}")
        row = (_text(key, "key"), _json_text(value, f"settings.{key}"))
        with self._transaction() as cur:
            cur.execute(self._sql(f"INSERT INTO settings (key, value) VALUES (?, {self._json_param}) "
                                  "ON CONFLICT (key) DO UPDATE SET value = excluded.value"), row)

    def setting(self, key: str) -> dict[str, Any] | None:
        """A stored setting, or ``None``."""
        with self._reading() as cur:
            cur.execute(self._sql(f"SELECT {self._json_read.format(col='value')} FROM settings WHERE key = ?"),
                        (key,))
            row = cur.fetchone()
        if row is None:
            return None
        value: dict[str, Any] = json.loads(row[0])
        return value

    def close(self) -> None:
        """Close the connections. Idempotent."""
        with self._lock, (self._rlock if self._rlock is not self._lock else contextlib.nullcontext()):
            if not self._closed:
                self._closed = True
                self._close_connection()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


#: Seconds between the SQLite log's background WAL checkpoints.
CHECKPOINT_EVERY_S = 1.0


class SQLiteEventLog(EventLog):
    """The event log in one SQLite file (WAL, ``synchronous=FULL``).

    Several processes may open the same file; appends are serialized by SQLite's write lock
    (a writer waits up to ``busy_timeout_s`` for it).

    Args:
        path: The database file (parent folders are created), or ``:memory:``.
        busy_timeout_s: How long a write waits for another connection's write lock.

    Raises:
        ValidationError: (field ``db``) the file cannot be opened as a database.
    """

    _types: ClassVar[Mapping[str, str]] = {"BIGINT": "INTEGER", "FLOAT": "REAL", "JSON": "TEXT", "BLOB": "BLOB"}

    def __init__(self, path: str | Path, *, busy_timeout_s: float = 30.0) -> None:
        memory = str(path) == ":memory:"
        super().__init__("sqlite:///" + str(path))
        self.path = None if memory else Path(path)
        try:
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: no implicit transactions; _transaction() issues BEGIN IMMEDIATE.
            self._conn = sqlite3.connect(str(path), timeout=busy_timeout_s, isolation_level=None,
                                         check_same_thread=False)
        except (sqlite3.Error, OSError) as err:
            raise ValidationError("db", f"cannot open the SQLite event log {path}: {err}") from None
        try:
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = FULL")
            self._create_schema()
            # Readers on a connection of their own (WAL: they see the last commit, never wait for
            # a writer); an in-memory database exists only in its one connection.
            self._rconn = self._conn if memory else sqlite3.connect(
                str(path), timeout=busy_timeout_s, isolation_level=None, check_same_thread=False)
            self._checkpointer: threading.Thread | None = None
            if memory:
                self._rlock = self._lock
            else:
                self._rconn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
                # Checkpoints (copying the WAL into the database, with an fsync) off the commit
                # path: SQLite's automatic one runs inside whichever commit crosses 1,000 pages
                # and stalls it for tens of ms. A thread of its own checkpoints every second.
                self._conn.execute("PRAGMA wal_autocheckpoint = 0")
                self._stop_checkpoints = threading.Event()
                self._checkpointer = threading.Thread(target=self._checkpoint_loop, name="wal-checkpoint",
                                                      daemon=True)
                self._checkpointer.start()
        except BaseException as err:
            self._conn.close()
            if isinstance(err, sqlite3.Error):
                raise ValidationError("db", f"cannot open the SQLite event log {path}: {err}") from None
            raise

    def _sql(self, query: str) -> str:
        return query

    @contextmanager
    def _transaction(self) -> Iterator[_Cursor]:
        with self._lock:
            self._check_open()
            cur = self._conn.cursor()
            try:
                cur.execute("BEGIN IMMEDIATE")  # the write lock now, not at the first write
                yield cur
                cur.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.rollback()
                raise
            finally:
                cur.close()

    @contextmanager
    def _reading(self) -> Iterator[_Cursor]:
        with self._rlock:
            self._check_open()
            cur = self._rconn.cursor()
            try:
                yield cur
            finally:
                cur.close()

    def _unique_violation(self, err: BaseException) -> str | None:
        # "UNIQUE constraint failed: audit_log.event_id, audit_log.seq"
        if isinstance(err, sqlite3.IntegrityError) and getattr(err, "sqlite_errorname", "") in (
                "SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"):
            return str(err)
        return None

    def _checkpoint_loop(self) -> None:
        """PASSIVE checkpoints on a connection of their own: never blocks a writer or a reader."""
        conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        try:
            while not self._stop_checkpoints.wait(CHECKPOINT_EVERY_S):
                with contextlib.suppress(sqlite3.Error):  # busy or closing: the next round tries again
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            conn.close()

    def _close_connection(self) -> None:
        if self._checkpointer is not None:
            self._stop_checkpoints.set()
            self._checkpointer.join(timeout=10)
        if self._rconn is not self._conn:
            self._rconn.close()
        with contextlib.suppress(sqlite3.Error):  # fold the WAL back into the database file
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        self._conn.close()


class PostgresEventLog(EventLog):
    """The event log in a PostgreSQL database (psycopg 3).

    Commits are durable (the session sets ``synchronous_commit = on`` whatever the server's
    default). Appends take an ``EXCLUSIVE`` lock on the records table until they commit, so
    global sequence numbers are gap-free and in commit order; reads are never blocked.

    If the server goes away, the failing call raises :class:`psycopg.OperationalError`
    and the next call reconnects.

    Args:
        url: ``postgresql://user:password@host:port/dbname`` (or ``postgres://``, or a libpq
            key/value string); query parameters such as ``?options=-csearch_path%3Dtwin``
            are passed to libpq.
        connect_timeout_s: How long to wait for the server.

    Raises:
        TwinError: the server cannot be reached, or refuses the connection.
        ValidationError: (field ``db``) psycopg is not installed.
    """

    _types: ClassVar[Mapping[str, str]] = {"BIGINT": "BIGINT", "FLOAT": "DOUBLE PRECISION", "JSON": "JSONB", "BLOB": "BYTEA"}
    _json_param = "?::jsonb"
    _json_read = "{col}::text"
    _append_lock_sql = "LOCK TABLE audit_log IN EXCLUSIVE MODE"  # blocks other appends, not reads
    # Concurrent CREATE TABLE IF NOT EXISTS can fail in PostgreSQL: one process at a time.
    _schema_lock_sql = "SELECT pg_advisory_xact_lock(7419301852)"

    def __init__(self, url: str, *, connect_timeout_s: float = 10.0) -> None:
        super().__init__(url)
        try:
            import psycopg
        except ImportError:
            raise ValidationError("db", "PostgreSQL needs psycopg 3: pip install 'psycopg[binary]>=3.1' "
                                  "(or the 'live' extra)") from None
        self._psycopg = psycopg
        self._connect_timeout_s = connect_timeout_s
        self._conn = self._connect()
        self._rconn: Any = None  # the read connection, opened at the first read
        try:
            self._create_schema()
        except BaseException:
            self._conn.close()
            raise

    def _connect(self) -> Any:
        try:
            conn = self._psycopg.connect(self.url, autocommit=True,
                                         connect_timeout=max(1, round(self._connect_timeout_s)))
        except self._psycopg.Error as err:
            raise TwinError(f"cannot connect to the PostgreSQL event log {self.safe_url}: "
                            f"{str(err).strip()}") from None
        conn.execute("SET synchronous_commit = on")
        return conn

    def _live_connection(self) -> Any:
        """The write connection, reconnected if the server dropped it. Call holding the lock."""
        self._check_open()
        if self._conn.closed:
            self._conn = self._connect()
        return self._conn

    def _read_connection(self) -> Any:
        """The read connection, (re)connected if needed. Call holding the read lock."""
        self._check_open()
        if self._rconn is None or self._rconn.closed:
            self._rconn = self._connect()
        return self._rconn

    def _sql(self, query: str) -> str:
        return query.replace("?", "%s")

    @contextmanager
    def _transaction(self) -> Iterator[_Cursor]:
        with self._lock:
            conn = self._live_connection()
            with conn.transaction(), conn.cursor() as cur:
                yield cur

    @contextmanager
    def _reading(self) -> Iterator[_Cursor]:
        with self._rlock:
            conn = self._read_connection()
            with conn.cursor() as cur:
                yield cur

    def _unique_violation(self, err: BaseException) -> str | None:
        # audit_log_event_id_seq_key, idempotency_pkey, ...
        if isinstance(err, self._psycopg.errors.UniqueViolation):
            return str(err.diag.constraint_name or err)
        return None

    def _close_connection(self) -> None:
        if self._rconn is not None:
            self._rconn.close()
        self._conn.close()


def open_log(spec: str | Path) -> EventLog:
    """Open the event log that ``spec`` names.

    Args:
        spec: ``postgresql://...`` or ``postgres://...`` (PostgreSQL); ``sqlite:///path``
            (SQLAlchemy's spelling: three slashes then the path, so ``sqlite:////var/x.db``
            is absolute and ``sqlite:///data/x.db`` relative); a plain file path or a
            :class:`~pathlib.Path` (SQLite); or ``:memory:`` (a throwaway SQLite log).

    Returns:
        The opened log (the tables are created if missing).

    Raises:
        ValidationError: (field ``db``) ``spec`` is none of the accepted forms, or the
            database cannot be opened.
    """
    if isinstance(spec, Path):
        return SQLiteEventLog(spec)
    if not isinstance(spec, str):
        raise ValidationError("db", f"must be a string or a path, got {type(spec).__name__}; "
                              f"accepted: {ACCEPTED_FORMS}")
    text = spec.strip()
    if not text:
        raise ValidationError("db", f"is empty; accepted: {ACCEPTED_FORMS}")
    lowered = text.lower()
    if lowered.startswith(("postgresql://", "postgres://")):
        return PostgresEventLog(text)
    if lowered.startswith("sqlite:"):
        if not lowered.startswith("sqlite:///") or len(text) == len("sqlite:///"):
            raise ValidationError("db", f"'{_mask_password(text)}' names no file: a SQLite URL is sqlite:/// "
                                  f"followed by the path; accepted: {ACCEPTED_FORMS}")
        return SQLiteEventLog(text[len("sqlite:///"):])
    if text == ":memory:":
        return SQLiteEventLog(text)
    if "://" in text:
        scheme = text.split("://", 1)[0]
        raise ValidationError("db", f"unsupported database '{_mask_password(text)}' (scheme '{scheme}'); "
                              f"accepted: {ACCEPTED_FORMS}")
    return SQLiteEventLog(text)
