"""Migrations: from an empty file, idempotent re-open, refusing newer files."""

from __future__ import annotations

import sqlite3
from contextlib import closing

import pytest

from leharness import store
from leharness.store import schema

from .util import snapshot, tool_round


def schema_of(conn: sqlite3.Connection) -> list[tuple]:
    return conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()


def test_migrating_an_empty_file_creates_events_and_every_projection(tmp_path):
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()
    conn = store.open_store(path)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"events", "sessions", "messages", "tool_calls", "tasks", "artifacts"} <= tables
    assert store.migrate(conn) == store.SCHEMA_VERSION


def test_reopening_is_idempotent(tmp_path):
    path = tmp_path / "s.db"
    conn = store.open_store(path)
    tool_round(conn, store.create_session(conn))
    before_schema, before_rows = schema_of(conn), snapshot(conn)
    conn.close()
    again = store.open_store(path)
    assert schema_of(again) == before_schema
    assert snapshot(again) == before_rows
    assert again.execute("SELECT count(*) FROM events").fetchone()[0] == 9


def test_a_newer_user_version_is_refused_and_the_file_is_left_alone(tmp_path):
    path = tmp_path / "future.db"
    conn = store.open_store(path)
    conn.execute(f"PRAGMA user_version = {store.SCHEMA_VERSION + 1}")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(store.StoreError, match="newer than this leharness"):
        store.open_store(path)
    assert path.read_bytes() == before


def test_upgrading_from_an_older_version_reinstalls_and_rebuilds_projections(tmp_path):
    path = tmp_path / "old.db"
    conn = store.open_store(path)
    session_id = store.create_session(conn)
    tool_round(conn, session_id)
    expected = snapshot(conn)
    # Pretend the file was written before the projections existed.
    conn.execute("DROP TABLE messages")
    conn.execute("PRAGMA user_version = 1")
    conn.close()
    upgraded = store.open_store(path)
    assert snapshot(upgraded) == expected


def test_a_file_that_is_not_sqlite_gives_a_clear_error_and_is_not_overwritten(tmp_path):
    path = tmp_path / "sessions.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(store.StoreError, match=r"sessions\.db is not a SQLite database"):
        store.open_store(path)
    assert path.read_bytes() == b"this is not a database" * 100


def test_an_edited_projection_file_is_reinstalled_on_the_next_open(tmp_path):
    path = tmp_path / "s.db"
    conn = store.open_store(path)
    tool_round(conn, store.create_session(conn))
    expected_schema, expected_rows = schema_of(conn), snapshot(conn)
    # As an older leharness left it: an older trigger, another hash, no version bump.
    conn.execute("DROP TRIGGER proj_messages_answer")
    conn.execute("DELETE FROM messages WHERE role = 'assistant'")
    conn.execute("UPDATE lh_meta SET value = 'older' WHERE key = 'projections_sha256'")
    conn.close()
    again = store.open_store(path)
    assert schema_of(again) == expected_schema
    assert snapshot(again) == expected_rows
    assert schema.installed_hash(again) == schema.projection_hash()
    assert list(tmp_path.glob("*.backup")) == []  # a reinstall of derived rows needs none


def test_a_migration_keeps_a_backup_until_the_next_successful_one(tmp_path):
    path = tmp_path / "s.db"
    conn = store.open_store(path)
    session_id = store.create_session(conn)
    tool_round(conn, session_id)
    conn.execute(f"PRAGMA user_version = {store.SCHEMA_VERSION - 1}")
    conn.close()
    store.open_store(path).close()
    (first,) = tmp_path.glob("*.backup")
    assert first.name.startswith(f"s.db.v{store.SCHEMA_VERSION - 1}-")
    with closing(sqlite3.connect(first)) as copy:  # the file as it was: every event
        assert copy.execute("PRAGMA user_version").fetchone()[0] == store.SCHEMA_VERSION - 1
        assert copy.execute("SELECT count(*) FROM events").fetchone()[0] == 9
    conn = store.open_store(path)
    conn.execute("PRAGMA user_version = 1")
    conn.close()
    store.open_store(path).close()
    (second,) = tmp_path.glob("*.backup")
    assert second != first and second.name.startswith("s.db.v1-")


def test_no_backup_for_a_new_file(tmp_path):
    store.open_store(tmp_path / "s.db").close()
    assert list(tmp_path.glob("*.backup")) == []
