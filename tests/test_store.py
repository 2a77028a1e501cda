"""The event log's guards: append-only, contiguous sequence, validated payloads."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from leharness import store
from leharness.store.connection import check_sqlite_version


def test_open_creates_the_file_in_leharness_home_with_wal_and_pragmas(isolated_home: Path):
    conn = store.open_store()
    assert (isolated_home / "sessions.db").exists()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 10_000
    assert conn.execute("PRAGMA user_version").fetchone()[0] == store.SCHEMA_VERSION


def test_default_home_is_dot_leharness_in_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("LEHARNESS_HOME")
    assert store.db_path() == tmp_path / ".leharness" / "sessions.db"


def test_a_home_that_is_a_file_is_a_clear_error(tmp_path, monkeypatch):
    (tmp_path / "afile").write_text("x")
    monkeypatch.setenv("LEHARNESS_HOME", str(tmp_path / "afile"))
    with pytest.raises(store.StoreError, match="is a file"):
        store.open_store()


def test_too_old_sqlite_is_refused_with_a_clear_message():
    with pytest.raises(store.StoreError, match=r"SQLite 3\.30\.1 is too old"):
        check_sqlite_version("3.30.1")
    check_sqlite_version("3.40.1")


def test_append_returns_the_stored_event(db):
    session_id = store.create_session(db)
    event = store.append(db, session_id, {"type": "invocation.received", "text": "hello"})
    assert event.session_seq == 2
    assert event.type == "invocation.received"
    assert event.data.text == "hello"
    assert len(event.id) == 26
    stored = list(store.read_events(db, session_id))
    assert [e.id for e in stored] == [stored[0].id, event.id]
    assert stored[1] == event


def test_update_and_delete_on_events_raise(db):
    session_id = store.create_session(db)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("UPDATE events SET type = 'x'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("DELETE FROM events WHERE session_id = ?", (session_id,))
    assert db.execute("SELECT count(*) FROM events").fetchone()[0] == 1


@pytest.mark.parametrize("bad_seq", [4, 2, 1, 0, -1])
def test_a_gap_or_duplicate_session_seq_is_rejected(db, bad_seq):
    session_id = store.create_session(db)
    store.append(db, session_id, {"type": "invocation.received", "text": "x"})
    with pytest.raises(sqlite3.IntegrityError, match="max \\+ 1"):
        db.execute(
            "INSERT INTO events (id, session_id, session_seq, ts, type, data) "
            "VALUES ('X', ?, ?, '2026-01-01T00:00:00.000Z', 'step.started', '{\"step\": 1}')",
            (session_id, bad_seq),
        )
    assert store.last_seq(db, session_id) == 2


def test_invalid_json_data_is_rejected_by_the_database(db):
    with pytest.raises(sqlite3.IntegrityError):
        db.execute(
            "INSERT INTO events (id, session_id, session_seq, ts, type, data) "
            "VALUES ('Y', 's', 1, 't', 'session.created', 'not json')"
        )


def test_unknown_type_is_a_clear_error_and_writes_nothing(db):
    session_id = store.create_session(db)
    with pytest.raises(store.EventValidationError, match=r"unknown event type 'model\.exploded'"):
        store.append(db, session_id, {"type": "model.exploded"})
    assert store.last_seq(db, session_id) == 1


def test_bad_payload_is_a_value_error_naming_the_field_and_writes_nothing(db):
    session_id = store.create_session(db)
    with pytest.raises(ValueError, match=r"invalid tool\.completed payload: .*result"):
        store.append(db, session_id, {"type": "tool.completed", "call_id": "c", "name": "bash"})
    with pytest.raises(ValueError, match="secret: Extra inputs"):
        store.append(db, session_id, {"type": "step.started", "step": 1, "secret": "x"})
    assert store.last_seq(db, session_id) == 1
    assert db.execute("SELECT count(*) FROM messages").fetchone()[0] == 0


def test_appends_inside_an_open_transaction_commit_together(db):
    session_id = store.create_session(db)
    with pytest.raises(RuntimeError), store.write_transaction(db):
        store.append(db, session_id, {"type": "invocation.received", "text": "a"})
        store.append(db, session_id, {"type": "invocation.received", "text": "b"})
        raise RuntimeError("crash before commit")
    assert store.last_seq(db, session_id) == 1


def test_a_transaction_sqlite_ended_itself_keeps_its_own_error(db):
    """INSERT OR ROLLBACK (the merge's copies) ends the transaction inside SQLite: the
    caller sees the constraint that failed, not a ROLLBACK with nothing to roll back."""
    session_id = store.create_session(db)
    (event_id,) = db.execute("SELECT id FROM events").fetchone()
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"), store.write_transaction(db):
        store.append(db, session_id, {"type": "invocation.received", "text": "kept?"})
        db.execute(
            "INSERT OR ROLLBACK INTO events (id, session_id, session_seq, ts, type, data) "
            "VALUES (?, 'S-OTHER', 1, '2026-01-01T00:00:00.000Z', 'session.created', '{}')",
            (event_id,),
        )
    assert not db.in_transaction
    assert store.last_seq(db, session_id) == 1  # the append before it went back too
    store.append(db, session_id, {"type": "invocation.received", "text": "next"})
    assert store.last_seq(db, session_id) == 2


def test_every_designed_event_type_has_a_model():
    designed = {
        "session.created", "session.forked", "invocation.received", "invocation.auto",
        "step.started", "model.completed", "model.failed", "model.cancelled", "tool.started",
        "tool.completed", "tool.failed", "task.started", "task.completed", "task.failed",
        "task.cancelled", "artifact.created", "compaction.started", "compaction.summary",
        "compaction.completed", "skill.loaded", "agent.finished",
    }  # fmt: skip
    assert designed <= set(store.EVENT_TYPES)
    for model in store.EVENT_TYPES.values():
        assert model.__doc__, f"{model.__name__} needs a one-line docstring"


def test_an_append_with_a_lone_surrogate_stores_it_escaped_and_returns_what_it_stored(db):
    """A str may hold lone surrogates (a byte of argv or a file name that is not UTF-8),
    which no event can hold: the append escapes them as \\xNN / \\uXXXX instead of
    failing in the payload's JSON, and the event it returns is the one stored."""
    session_id = store.create_session(db)
    event = store.append(
        db, session_id, {"type": "invocation.received", "text": "caf\udce9 \ud800 ok"}
    )
    assert event.data.text == "caf\\xe9 \\ud800 ok"
    (stored,) = db.execute("SELECT data FROM events WHERE seq = ?", (event.seq,)).fetchone()
    assert json.loads(stored)["text"] == "caf\\xe9 \\ud800 ok"
