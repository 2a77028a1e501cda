"""Projections reinstalled on a big file in short transactions, beside the old ones,
while another writer appends: the result is exactly a fresh install and a rebuild."""

from __future__ import annotations

import sqlite3
import threading
from contextlib import closing

from leharness import store
from leharness.store import health, reinstall, schema

from .util import tool_round


def schema_rows(conn: sqlite3.Connection) -> list[tuple]:
    rows = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name")
    return [tuple(row) for row in rows]


def test_a_chunked_reinstall_equals_a_fresh_one_while_another_writer_appends(tmp_path):
    path = tmp_path / "s.db"
    conn = store.open_store(path)
    for _ in range(20):
        tool_round(conn, store.create_session(conn))
    conn.execute("CREATE VIEW my_view AS SELECT count(*) AS n FROM messages")
    conn.execute("CREATE TABLE my_notes (note TEXT)")
    conn.execute("INSERT INTO my_notes VALUES ('keep me')")
    expected_schema = schema_rows(conn)
    stop = threading.Event()
    written: list[str] = []

    def writer() -> None:
        other = store.open_store(path)
        while not stop.is_set():
            session_id = store.create_session(other)
            tool_round(other, session_id)
            written.append(session_id)
        other.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        progress = reinstall.reinstall_in_chunks(path, chunk_s=0.002, force=True)
    finally:
        stop.set()
        thread.join()
    assert progress.chunks > 3 and written  # many short transactions, with appends between
    with closing(store.open_store(path)) as after:
        assert after.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert schema_rows(after) == expected_schema  # no lh_next_/lh_old_ left, same SQL
        assert health.rebuild_drift(after) == []  # every event, also the writer's, projected
        n_sessions = after.execute("SELECT count(*) FROM sessions").fetchone()[0]
        assert n_sessions == 20 + len(written)
        assert [tuple(r) for r in after.execute("SELECT note FROM my_notes")] == [("keep me",)]
        assert after.execute("SELECT n FROM my_view").fetchone()[0] > 0
        # The full-text index, filled again in chunks, holds every message exactly once.
        assert schema.check_fts(after, "conversation_fts") == ""
        (indexed,) = after.execute(
            "SELECT count(*) FROM conversation_fts WHERE conversation_fts MATCH 'hi'"
        ).fetchone()
        (stored,) = after.execute("SELECT count(*) FROM conversation WHERE text = 'hi'").fetchone()
        assert indexed == stored > 20


def test_a_big_file_with_other_projection_sql_is_reinstalled_in_chunks(tmp_path, monkeypatch):
    path = tmp_path / "s.db"
    conn = store.open_store(path)
    for _ in range(5):
        tool_round(conn, store.create_session(conn))
    expected_schema = schema_rows(conn)
    conn.execute("DROP TRIGGER proj_messages_answer")  # as an older .sql file had it
    conn.execute("UPDATE lh_meta SET value = 'older' WHERE key = 'projections_sha256'")
    conn.close()
    calls = []
    monkeypatch.setattr(schema, "CHUNKED_FROM_EVENTS", 10)
    real = reinstall.reinstall_in_chunks
    monkeypatch.setattr(
        reinstall, "reinstall_in_chunks", lambda *a, **k: calls.append(a) or real(*a, **k)
    )
    with closing(store.open_store(path)) as again:
        assert calls == [(path,)]
        assert schema_rows(again) == expected_schema
        assert schema.installed_hash(again) == schema.projection_hash()
        assert health.rebuild_drift(again) == []


def test_doctor_repairs_a_big_file_in_chunks(db, isolated_home, monkeypatch):
    from leharness.app import doctor

    for _ in range(3):
        tool_round(db, store.create_session(db))
    db.execute("UPDATE sessions SET title = 'tampered'")
    # A full-text index that lost rows, as the race fixed above left it: FTS5's own
    # integrity-check calls it malformed, and the doctor reports and rebuilds it.
    db.execute("INSERT INTO conversation_fts (conversation_fts) VALUES ('delete-all')")
    assert schema.check_fts(db, "conversation_fts") == "database disk image is malformed"
    found = doctor.examine(db)
    assert any(d.table == "conversation_fts" for d in found.drift)
    monkeypatch.setattr(schema, "CHUNKED_FROM_EVENTS", 10)
    used = []
    real = reinstall.reinstall_in_chunks
    monkeypatch.setattr(
        reinstall, "reinstall_in_chunks", lambda *a, **k: used.append(a) or real(*a, **k)
    )
    assert doctor.repair_projections(db) == 27
    assert used
    with closing(store.open_store(isolated_home / "sessions.db")) as after:
        assert health.rebuild_drift(after) == []
        assert {row[0] for row in after.execute("SELECT title FROM sessions")} == {"hi"}
        assert schema.check_fts(after, "conversation_fts") == ""
        (indexed,) = after.execute(
            "SELECT count(*) FROM conversation_fts WHERE conversation_fts MATCH 'hi'"
        ).fetchone()
        assert indexed == 3


def test_tables_an_interrupted_reinstall_left_are_reported_and_repaired(db, isolated_home):
    from click.testing import CliRunner

    from leharness.cli import cli

    tool_round(db, store.create_session(db))
    db.execute("CREATE TABLE lh_old_messages AS SELECT * FROM messages")  # as a crash left it
    db.execute("CREATE TABLE my_notes (note TEXT)")
    found = CliRunner().invoke(cli, ["doctor"])
    assert found.exit_code == 1
    assert "✗ table lh_old_messages is left from an interrupted projection reinstall" in (
        found.output
    )
    repaired = CliRunner().invoke(cli, ["doctor", "--repair"])
    assert repaired.exit_code == 0, repaired.output
    names = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "lh_old_messages" not in names and "my_notes" in names


def test_rows_appended_between_the_swap_and_the_index_fill_stay_indexed(tmp_path, monkeypatch):
    # Deterministic form of the race above: another process appends right after the
    # swap commits, before the full-text index is filled again. Its rows are indexed by
    # the new triggers; the fill must not lose them (nor index them twice).
    path = tmp_path / "s.db"
    conn = store.open_store(path)
    for _ in range(5):
        tool_round(conn, store.create_session(conn))
    conn.close()
    real_swap = reinstall._swap

    def swap_then_append(*args, **kwargs):
        upto = real_swap(*args, **kwargs)
        with closing(store.open_store(path)) as other:
            tool_round(other, store.create_session(other))
        return upto

    monkeypatch.setattr(reinstall, "_swap", swap_then_append)
    reinstall.reinstall_in_chunks(path, chunk_s=0.002, force=True)
    with closing(store.open_store(path)) as after:
        assert schema.check_fts(after, "conversation_fts") == ""
        assert health.rebuild_drift(after) == []
        (indexed,) = after.execute(
            "SELECT count(*) FROM conversation_fts WHERE conversation_fts MATCH 'hi'"
        ).fetchone()
        (stored,) = after.execute("SELECT count(*) FROM conversation WHERE text = 'hi'").fetchone()
        assert indexed == stored == 6
