"""The durable event log, on real databases: SQLite files and a private PostgreSQL cluster
(``postgres_url`` in conftest). Every behaviour runs on both backends."""

from __future__ import annotations

import os
import pickle
import signal
import sqlite3
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import quote

import pytest

from actors.eventlog import (
    DuplicateRecord,
    EventLog,
    PostgresEventLog,
    SQLiteEventLog,
    _mask_password,
    open_log,
)
from twin.errors import TwinError, ValidationError
from twin.geo import Location
from twin.workflow import Action, AuditRecord, Event, State, apply, replay, report

ROOT = Path(__file__).resolve().parent.parent
T0 = 1_772_416_800.0  # 2026-03-02 10:00 Asia/Shanghai
LOC = Location(lon=120.1432, lat=30.3121, x=812.5, y=-240.25, road_id="r17", node=42, grid_id="G003",
               community_id="C01", area_id="A1", road_distance_m=3.5)


def supervise(event_id: str, seq: int, at: float, **data: Any) -> AuditRecord:
    """A self-transition record (supervision note) with arbitrary details."""
    return AuditRecord(event_id, seq, T0 + at, "brain", Action.SUPERVISE, State.DISPATCHED, State.DISPATCHED,
                       "督办", MappingProxyType(data))


def reported(event_id: str, at: float = 0.0, **kw: Any) -> tuple[Event, AuditRecord]:
    return report(event_id=event_id, scenario="CM01", category="city_management", severity="low",
                  source=kw.pop("source", "camera"), location=LOC, now=T0 + at, actor=kw.pop("actor", "camera:K0001"),
                  **kw)


# --- fixtures ----------------------------------------------------------------------------------


def _fresh_schema(postgres_url: str) -> str:
    """A URL whose tables land in a new, empty schema of the test database."""
    import psycopg

    schema = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return f"{postgres_url}?options={quote(f'-csearch_path={schema}')}"


@pytest.fixture(params=["sqlite", "postgres"])
def log_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a fresh, empty log lives: a SQLite file, or a private schema in PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'twin' / 'log.db'}"
    pytest.importorskip("psycopg")
    return _fresh_schema(request.getfixturevalue("postgres_url"))


@pytest.fixture
def log(log_url: str) -> Iterator[EventLog]:
    with open_log(log_url) as opened:
        yield opened


# --- append and read ---------------------------------------------------------------------------


def test_round_trip_keeps_every_field(log: EventLog) -> None:
    _, first = reported("E1", description="店外经营：水果摊占道", external_id="cam-7781")
    nested = supervise("E1", 2, 12.25, members=["GW1", "CG2"], route={"nodes": [3, 4, 5], "length_m": 412.5,
                                                                     "via": {"road": "小河路", "ok": True}},
                       note="已电话督办，请尽快到场", none=None, big=2**53 + 1, tiny=1e-7, zero=0.0, neg=-3)
    empty = AuditRecord("E2", 1, T0 + 0.1, "", Action.SUPERVISE, None, State.REPORTED)
    assert log.last_seq() == 0 and log.records() == []

    assert log.append([first]) == [1]
    assert log.append([nested, empty]) == [2, 3]
    assert log.append([]) == []
    got = log.records()
    assert [seq for seq, _ in got] == [1, 2, 3]
    assert [rec for _, rec in got] == [first, nested, empty]
    assert got[1][1].data["route"]["via"]["road"] == "小河路" and type(got[1][1].data["big"]) is int
    assert log.last_seq() == 3


def test_tuples_and_nested_mappings_are_stored_as_json(log: EventLog) -> None:
    rec = supervise("E1", 2, 1, members=("GW1", "GW2"), extra=MappingProxyType({"k": (1, 2)}))
    log.append([rec])
    assert dict(log.records()[0][1].data) == {"members": ["GW1", "GW2"], "extra": {"k": [1, 2]}}


def test_filters(log: EventLog) -> None:
    for i in range(5):
        log.append([supervise("A", i + 1, 10 * i), supervise("B", i + 1, 10 * i + 5)])
    assert [s for s, _ in log.records(since=7)] == [8, 9, 10]
    assert [(r.event_id, r.seq) for _, r in log.records(event_id="B")] == [("B", s) for s in range(1, 6)]
    assert [s for s, _ in log.records(until_at=T0 + 20)] == [1, 2, 3, 4, 5]
    assert [s for s, _ in log.records(limit=3)] == [1, 2, 3]
    assert [s for s, _ in log.records(since=2, event_id="A", until_at=T0 + 30, limit=2)] == [3, 5]
    assert log.records(limit=0) == [] and log.records(since=10) == [] and log.records(event_id="nope") == []
    with pytest.raises(ValidationError) as err:
        log.records(limit=-1)
    assert err.value.field == "limit"


def test_duplicate_writes_nothing_of_the_batch(log: EventLog) -> None:
    log.append([supervise("E1", 1, 0), supervise("E1", 2, 1)])
    before = log.records()
    with pytest.raises(DuplicateRecord) as err:
        log.append([supervise("E2", 1, 2), supervise("E1", 2, 3), supervise("E3", 1, 4)],
                   idempotency=("k-dup", "GW1", "h", {"ok": True}))
    assert (err.value.event_id, err.value.seq) == ("E1", 2)
    assert "E1#2" in str(err.value) and "nothing of the batch was written" in str(err.value)
    with pytest.raises(DuplicateRecord, match="E9#1"):  # twice in the same batch
        log.append([supervise("E9", 1, 2), supervise("E9", 1, 3)])
    assert log.last_seq() == 2 and log.records() == before
    assert log.idempotent("k-dup", "GW1") is None
    assert log.append([supervise("E2", 1, 5)]) == [3]  # no gap left by the failed batches


def test_duplicate_record_survives_pickling() -> None:
    """It crosses Ray actor boundaries."""
    for err in (DuplicateRecord("E1", 2), DuplicateRecord(None, None, key="k", principal="GW1")):
        back = pickle.loads(pickle.dumps(err))
        assert isinstance(back, TwinError) and str(back) == str(err)


def test_idempotency_is_stored_with_the_records(log: EventLog) -> None:
    _, rec = reported("E1")
    response = {"event": {"id": "E1", "state": "reported", "位置": [120.1, 30.3]}, "n": 1}
    assert log.append([rec], idempotency=("key-1", "GW1", "sha256:abc", response)) == [1]
    assert log.idempotent("key-1", "GW1") == ("sha256:abc", response)
    assert log.idempotent("key-1", "GW2") is None  # keys are per principal
    assert log.idempotent("key-2", "GW1") is None

    # the same key again: refused whole, so a concurrent retry cannot write its records twice
    with pytest.raises(DuplicateRecord, match="idempotency key 'key-1' of 'GW1'"):
        log.append([supervise("E1", 2, 1)], idempotency=("key-1", "GW1", "sha256:abc", {"other": 1}))
    assert log.last_seq() == 1 and log.idempotent("key-1", "GW1") == ("sha256:abc", response)

    # a request that writes no records
    log.put_idempotent("key-3", "admin", "sha256:def", {"mode": "wartime"})
    log.put_idempotent("key-3", "admin", "sha256:xyz", {"mode": "peacetime"})  # the first is kept
    assert log.idempotent("key-3", "admin") == ("sha256:def", {"mode": "wartime"})
    assert log.append([], idempotency=("key-4", "admin", "h4", {})) == []
    assert log.idempotent("key-4", "admin") == ("h4", {})


def test_bad_input_names_the_field_and_writes_nothing(log: EventLog) -> None:
    ok = supervise("E1", 1, 0)
    cases: list[tuple[list[Any], str, str]] = [
        ([ok, {"event_id": "E2"}], "records[1]", "must be an AuditRecord"),
        ([ok, supervise("E2", 1, 0, travel_s=float("nan"))], "records[1].data", "must be JSON"),
        ([ok, supervise("E2", 1, 0, when=object())], "records[1].data", "must be JSON"),
        ([supervise("E2", 1, 0, note="a\x00b")], "records[0].data", "NUL"),
        ([AuditRecord("E\x00", 1, T0, "x", Action.SUPERVISE, None, State.REPORTED)], "records[0].event_id", "NUL"),
    ]
    for records, field, reason in cases:
        with pytest.raises(ValidationError) as err:
            log.append(records)
        assert err.value.field == field and reason in err.value.reason
    with pytest.raises(ValidationError) as err:
        log.append([ok], idempotency=("k", "p", "h", {"x": {1, 2}}))
    assert err.value.field == "idempotency.response"
    assert log.last_seq() == 0
    log.append([supervise("E2", 1, 0, note="a\\u0000b")])  # an escaped-looking text is just text
    assert log.records()[0][1].data["note"] == "a\\u0000b"


# --- replay ------------------------------------------------------------------------------------


def history() -> tuple[list[list[AuditRecord]], dict[str, Event], float]:
    """Two events as the live twin would append them, one request per batch; and a moment in
    the middle (``mid``) with the first event on scene."""
    e1, r = reported("E1", description="商户出店经营")
    e1, d = apply(e1, Action.DISPATCH, now=T0 + 2, actor="brain", reason="nearest free grid worker",
                  member="GW1", travel_s=96.4)
    batches = [[r, d]]  # report and automatic dispatch: one request
    e2, r = reported("E2", at=30, source="citizen", actor="citizen:13800000000", external_id="12345-678")
    batches.append([r])
    steps: list[tuple[str, Action, float, dict[str, Any]]] = [
        ("E1", Action.SIGN, 40, {}),
        ("E2", Action.DISPATCH, 45, {"member": "GW2"}),
        ("E1", Action.ARRIVE, 130, {}),
        ("E2", Action.SIGN, 150, {}),
        ("E2", Action.ESCALATE, 400, {"chain_length": 3}),
        ("E2", Action.DISPATCH, 410, {"member": "CG1", "tier": 1}),
        ("E1", Action.RESOLVE, 700, {"result": "货物已搬回店内，已劝导", "evidence": ["sha256:00ff"]}),
        ("E1", Action.VERIFY, 900, {}),
    ]
    events = {"E1": e1, "E2": e2}
    for eid, action, at, data in steps:
        events[eid], rec = apply(events[eid], action, now=T0 + at, actor="GW1" if eid == "E1" else "brain",
                                 reason=f"{action.value} ok", **data)
        batches.append([rec])
    return batches, events, T0 + 200


def test_replay_over_the_log_rebuilds_the_events(log: EventLog) -> None:
    batches, events, mid = history()
    for batch in batches:
        log.append(batch)
    rebuilt = replay(rec for _, rec in log.records())
    assert rebuilt == events
    assert rebuilt["E1"].state is State.CLOSED and rebuilt["E1"].evidence == ("sha256:00ff",)
    assert rebuilt["E2"].assignee == "CG1" and rebuilt["E2"].tier == 1
    then = replay(rec for _, rec in log.records(until_at=mid))
    assert then["E1"].state is State.ON_SCENE and then["E2"].state is State.SIGNED
    e1_only = replay(rec for _, rec in log.records(event_id="E1"))
    assert e1_only == {"E1": events["E1"]}


# --- durability --------------------------------------------------------------------------------

CHILD = r"""
import sys, time
from types import MappingProxyType
from actors.eventlog import open_log
from twin.workflow import Action, AuditRecord, State
log = open_log(sys.argv[1])
i = 0
while True:
    i += 1
    recs = [AuditRecord(f"K{i}", 1, 1.7e9 + i, "camera:K1", Action.REPORT, None, State.REPORTED, "报告",
                        MappingProxyType({"i": i, "pad": "x" * 200})),
            AuditRecord(f"K{i}", 2, 1.7e9 + i, "brain", Action.DISPATCH, State.REPORTED, State.DISPATCHED,
                        "派遣", MappingProxyType({"member": "GW1"}))]
    seqs = log.append(recs)
    print("ACK", i, *seqs, flush=True)
    if sys.argv[2] == "once":
        time.sleep(600)
"""


@pytest.mark.parametrize("mode", ["once", "loop"])
def test_acknowledged_appends_survive_sigkill(log_url: str, mode: str) -> None:
    """A writer is killed (SIGKILL) right after appends return: once and then idle, or in the
    middle of a stream of appends. Every acknowledged batch is there, exactly once; any batch
    caught in flight is there whole or not at all."""
    want = 1 if mode == "once" else 40
    proc = subprocess.Popen([sys.executable, "-c", CHILD, log_url, mode], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    acked: dict[int, list[int]] = {}
    try:
        assert proc.stdout is not None
        while len(acked) < want:
            line = proc.stdout.readline()
            if not line:
                pytest.fail(f"writer died: {proc.stderr.read() if proc.stderr else ''}")
            _, n, *numbers = line.split()
            acked[int(n)] = [int(s) for s in numbers]
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    # The writer may have run ahead of this reader before the kill: its acknowledgements
    # are still in the pipe.
    assert proc.stdout is not None
    for line in proc.stdout.read().splitlines():
        fields = line.split()
        if len(fields) == 4:  # (a line cut by the kill was never an acknowledgement)
            acked[int(fields[1])] = [int(s) for s in fields[2:]]
    with open_log(log_url) as log:
        rows = log.records()
    where = {(rec.event_id, rec.seq): seq for seq, rec in rows}
    assert len(where) == len(rows)  # no (event_id, seq) twice
    for i, seqs in acked.items():
        assert [where.get((f"K{i}", 1)), where.get((f"K{i}", 2))] == seqs
    assert [seq for seq, _ in rows] == list(range(1, len(rows) + 1))
    assert len(rows) % 2 == 0 and len(rows) // 2 in (len(acked), len(acked) + 1)
    assert all(rec.event_id == f"K{n // 2 + 1}" for n, (_, rec) in enumerate(rows))


def test_two_logs_on_one_database_append_concurrently(log_url: str) -> None:
    """Two connections (two EventLog objects, as two processes would have), two threads each:
    nothing lost, nothing doubled, every writer's batches in its own order, seqs gap-free."""
    logs = [open_log(log_url), open_log(log_url)]
    errors: list[BaseException] = []
    got: dict[str, list[int]] = {}

    def writer(log: EventLog, name: str) -> None:
        try:
            seqs: list[int] = []
            for i in range(25):
                seqs += log.append([supervise(f"{name}-{i}", 1, i), supervise(f"{name}-{i}", 2, i)])
            got[name] = seqs
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(logs[n % 2], f"w{n}")) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        rows = logs[0].records()
        assert [seq for seq, _ in rows] == list(range(1, 201))
        assert len({(r.event_id, r.seq) for _, r in rows}) == 200
        assert sorted(s for seqs in got.values() for s in seqs) == list(range(1, 201))
        for name, seqs in got.items():
            assert seqs == sorted(seqs)
            assert [(r.event_id, r.seq) for s, r in rows if r.event_id.startswith(f"{name}-")] == [
                (f"{name}-{i}", k) for i in range(25) for k in (1, 2)]
        assert logs[1].last_seq() == 200
    finally:
        for log in logs:
            log.close()


# --- the API's small durable state -------------------------------------------------------------


def test_tokens(log: EventLog) -> None:
    assert log.token("h1") is None
    log.put_token("h1", "member", "GW1", "王小明")
    log.put_token("h2", "admin", None, "ops")
    assert log.token("h1") == ("member", "GW1", "王小明") and log.token("h2") == ("admin", None, "ops")
    log.put_token("h1", "dispatcher", None, "王小明")  # re-issued with another role
    assert log.token("h1") == ("dispatcher", None, "王小明")
    assert log.delete_token("h1") is True and log.delete_token("h1") is False
    assert log.token("h1") is None and log.token("h2") == ("admin", None, "ops")


def test_evidence_is_content_addressed(log: EventLog) -> None:
    photo = bytes(range(256)) * 40 + b"\x00\xff"
    first = log.put_evidence("E1", "image/jpeg", photo)
    assert first.startswith("sha256:") and len(first) == len("sha256:") + 64
    assert log.put_evidence("E1", "image/jpeg", photo) == first
    assert log.put_evidence("E7", "image/png", bytearray(photo)) == first  # the first upload is kept
    assert log.evidence(first) == ("E1", "image/jpeg", photo)
    other = log.put_evidence("E2", "image/png", b"")
    assert other != first and log.evidence(other) == ("E2", "image/png", b"")
    assert log.evidence("sha256:" + "0" * 64) is None
    with log._reading() as cur:  # stored once
        cur.execute("SELECT COUNT(*) FROM evidence")
        assert cur.fetchone()[0] == 2
    with pytest.raises(ValidationError) as err:
        log.put_evidence("E1", "image/jpeg", "not bytes")  # type: ignore[arg-type]
    assert err.value.field == "data"


def test_settings(log: EventLog) -> None:
    assert log.setting("mode") is None
    log.put_setting("mode", {"mode": "wartime", "by": "admin", "at": T0})
    log.put_setting("roster", {"swaps": [{"out": "GW1", "in": "GW9", "shift": "day"}], "note": "换班"})
    log.put_setting("mode", {"mode": "peacetime"})
    assert log.setting("mode") == {"mode": "peacetime"}
    assert log.setting("roster") == {"swaps": [{"out": "GW1", "in": "GW9", "shift": "day"}], "note": "换班"}
    with pytest.raises(ValidationError) as err:
        log.put_setting("mode", ["wartime"])  # type: ignore[arg-type]
    assert err.value.field == "settings.mode"


def test_everything_survives_reopening(log_url: str) -> None:
    batches, events, _ = history()
    with open_log(log_url) as log:
        for batch in batches:
            log.append(batch)
        log.put_token("h", "member", "GW1", "GW1")
        log.put_setting("mode", {"mode": "wartime"})
        photo = log.put_evidence("E1", "image/jpeg", b"jpeg")
        log.put_idempotent("k", "GW1", "h", {"ok": 1})
    with open_log(log_url) as log:
        assert replay(r for _, r in log.records()) == events
        assert log.last_seq() == sum(map(len, batches))
        assert log.token("h") == ("member", "GW1", "GW1") and log.setting("mode") == {"mode": "wartime"}
        assert log.evidence(photo) == ("E1", "image/jpeg", b"jpeg") and log.idempotent("k", "GW1") == ("h", {"ok": 1})
        with log._reading() as cur:
            cur.execute("SELECT version FROM schema_version")
            assert cur.fetchall() == [(1,)]


def test_a_newer_schema_is_refused(log: EventLog, log_url: str) -> None:
    with log._transaction() as cur:
        cur.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(ValidationError) as err:
        open_log(log_url)
    assert err.value.field == "db" and "schema version 99" in err.value.reason


def test_closed_log(log: EventLog) -> None:
    log.close()
    log.close()
    with pytest.raises(TwinError, match="is closed"):
        log.last_seq()
    with pytest.raises(TwinError, match="is closed"):
        log.append([supervise("E1", 1, 0)])


# --- opening -----------------------------------------------------------------------------------


def test_open_log_picks_the_backend(log: EventLog, log_url: str) -> None:
    kind = PostgresEventLog if log_url.startswith("postgresql://") else SQLiteEventLog
    assert type(log) is kind and log.url == log_url
    log.append([supervise("E1", 1, 0)])
    for spelling in (log_url, log_url.replace("postgresql://", "postgres://", 1)):
        with open_log(spelling) as again:
            assert type(again) is kind and again.last_seq() == 1


def test_safe_url_masks_the_password(log_url: str) -> None:
    if log_url.startswith("postgresql://"):  # the test cluster trusts everyone: any password connects
        url = log_url.replace("postgres@", "postgres:s3cr%40et@", 1)
        with open_log(url) as log:
            assert log.url == url and "s3cr" not in log.safe_url and "s3cr" not in repr(log)
            assert log.safe_url.startswith("postgresql://postgres:***@127.0.0.1:")
            assert log.safe_url.endswith(log_url.split("@", 1)[1])
    else:
        with open_log(log_url) as log:
            assert log.safe_url == log.url == log_url
    assert _mask_password("host=db user=twin password=s3cret dbname=x") == "host=db user=twin password=*** dbname=x"
    assert _mask_password("postgresql://db/x?user=twin&password=s3cret") == "postgresql://db/x?user=twin&password=***"
    assert _mask_password("postgresql://twin@db/x") == "postgresql://twin@db/x"


def test_open_log_spellings_of_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    specs: list[tuple[str | Path, Path]] = [("sqlite:///rel/a.db", tmp_path / "rel" / "a.db"),
                                            (f"sqlite:///{tmp_path}/abs/b.db", tmp_path / "abs" / "b.db"),
                                            ("plain/c.db", tmp_path / "plain" / "c.db"),
                                            (tmp_path / "path" / "d.db", tmp_path / "path" / "d.db")]
    for spec, where in specs:
        with open_log(spec) as log:
            assert isinstance(log, SQLiteEventLog) and log.path is not None and log.path.resolve() == where
            log.append([supervise("E1", 1, 0)])
        assert where.exists()
        with open_log(f"sqlite:///{where}") as log:
            assert log.last_seq() == 1
    for spec in (":memory:", "sqlite:///:memory:"):
        with open_log(spec) as log:
            assert isinstance(log, SQLiteEventLog) and log.path is None
            assert log.append([supervise("E1", 1, 0)]) == [1]


def test_sqlite_file_is_wal_with_full_sync(tmp_path: Path) -> None:
    with SQLiteEventLog(tmp_path / "log.db") as log:
        assert log._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert log._conn.execute("PRAGMA busy_timeout").fetchone()[0] == 30_000
    conn = sqlite3.connect(tmp_path / "log.db")
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


@pytest.mark.parametrize(("spec", "says"), [
    ("", "is empty"),
    ("   ", "is empty"),
    ("mysql://twin:s3cret@db/twin", "unsupported database 'mysql://twin:***@db/twin' (scheme 'mysql')"),
    ("postgresql+psycopg://twin@db/x", "scheme 'postgresql+psycopg'"),
    ("sqlite://", "names no file"),
    ("sqlite://host/x.db", "names no file"),
    ("sqlite:///", "names no file"),
])
def test_open_log_refuses_other_spellings(spec: str, says: str) -> None:
    with pytest.raises(ValidationError) as err:
        open_log(spec)
    assert err.value.field == "db" and says in err.value.reason
    assert "postgresql://" in err.value.reason and "sqlite:///" in err.value.reason and ":memory:" in err.value.reason
    assert "s3cret" not in str(err.value)


def test_unopenable_databases_are_validation_errors(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(ValidationError) as err:
        open_log(tmp_path / "dir.db")
    assert err.value.field == "db" and "cannot open the SQLite event log" in err.value.reason
    (tmp_path / "junk.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(ValidationError, match="cannot open the SQLite event log"):
        open_log(tmp_path / "junk.db")
    with pytest.raises(ValidationError, match="not in the accepted forms|must be a string"):
        open_log(42)  # type: ignore[arg-type]


def test_postgres_unreachable_names_the_server_not_the_password() -> None:
    pytest.importorskip("psycopg")
    import socket

    with socket.socket() as s:  # a port where nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(TwinError) as err:
        PostgresEventLog(f"postgresql://twin:s3cret@127.0.0.1:{port}/x", connect_timeout_s=2)
    assert f"postgresql://twin:***@127.0.0.1:{port}/x" in str(err.value) and "s3cret" not in str(err.value)


def test_postgres_reconnects_after_the_server_drops_it(postgres_url: str) -> None:
    pytest.importorskip("psycopg")
    import psycopg

    with open_log(_fresh_schema(postgres_url)) as log:
        log.append([supervise("E1", 1, 0)])
        with log._reading() as cur:
            cur.execute("SELECT pg_backend_pid()")
            pid = cur.fetchone()[0]
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(psycopg.OperationalError):
            log.last_seq()
        assert log.last_seq() == 1
        assert log.append([supervise("E1", 2, 1)]) == [2]


def test_idempotent_keys_finds_the_stored_pairs_in_one_query(log: EventLog) -> None:
    log.put_idempotent("k1", "alice", "h1", {"a": 1})
    log.put_idempotent("k2", "bob", "h2", {"b": 2})
    asked = [("k1", "alice"), ("k1", "bob"), ("k2", "bob"), ("k3", "alice")]
    assert log.idempotent_keys(asked) == {("k1", "alice"), ("k2", "bob")}
    assert log.idempotent_keys([]) == set()
    many = [(f"x{i}", "alice") for i in range(1200)] + [("k1", "alice")]  # more than one query's worth
    assert log.idempotent_keys(many) == {("k1", "alice")}
