"""`lh doctor`: integrity, projections against a rebuild, orphaned tasks, artifacts;
and a corrupt or non-SQLite sessions.db gives one clear line and stays untouched."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

from click.testing import CliRunner

from leharness import store
from leharness.cli import cli
from leharness.store import events as ev
from leharness.testing import ScriptedServer, Text

from .e2e_helpers import lh_env, run_lh
from .util import tool_round


def doctor(*args: str):
    return CliRunner().invoke(cli, ["doctor", *args])


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_healthy_database_exits_0(db):
    session_id = store.create_session(db)
    tool_round(db, session_id)
    result = doctor()
    assert result.exit_code == 0, result.output
    assert "✓ integrity_check: ok" in result.output
    assert "✓ projections match a rebuild from the events" in result.output
    assert "9 events in 1 sessions" in result.output
    assert result.output.rstrip().endswith("healthy")


def test_a_projection_edited_behind_the_triggers_is_found_and_repaired(db, isolated_home):
    session_id = store.create_session(db)
    tool_round(db, session_id)
    with sqlite3.connect(isolated_home / "sessions.db") as raw:
        raw.execute("UPDATE sessions SET title = 'tampered'")
        raw.execute("DELETE FROM messages WHERE role = 'tool'")
    before = db.execute("SELECT count(*) FROM events").fetchone()[0]
    result = doctor()
    assert result.exit_code == 1
    assert "✗ projection messages differs from a rebuild of the events: 0 stale, 1 missing" in (
        result.output
    )
    assert "✗ projection sessions differs" in result.output
    assert db.execute("SELECT title FROM sessions").fetchone()[0] == "tampered"  # only reported
    repaired = doctor("--repair")
    assert repaired.exit_code == 0, repaired.output
    assert "repaired: rebuilt every projection from 9 events" in repaired.output
    assert db.execute("SELECT title FROM sessions").fetchone()[0] == "hi"
    assert db.execute("SELECT count(*) FROM events").fetchone()[0] == before


def test_orphaned_tasks_and_bad_artifacts_are_reported(db, isolated_home, tmp_path):
    session_id = store.create_session(db)
    pid = dead_pid()
    store.append(
        db,
        session_id,
        ev.TaskStarted(task_id="task_orphan", kind="bash", command="sleep 60", harness_pid=pid),
    )
    good, changed = tmp_path / "good.txt", tmp_path / "changed.txt"
    good.write_bytes(b"kept")
    changed.write_bytes(b"original")
    for artifact_id, path in (("a_good", good), ("a_changed", changed), ("a_gone", "/nope/x")):
        data = Path(path).read_bytes() if Path(path).exists() else b""
        store.append(
            db,
            session_id,
            ev.ArtifactCreated(
                artifact_id=artifact_id,
                kind="tool_output",
                path=str(path),
                bytes=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
            ),
        )
    changed.write_bytes(b"edited!!")
    result = doctor()
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.startswith("✗")]
    assert lines == [
        f"✗ task task_orphan of session {session_id} is still marked running but lh pid {pid} "
        f"is gone: `lh --session {session_id}` records it as cancelled",
        f"✗ artifact a_changed of session {session_id}: sha256 differs from the recorded one "
        f"({changed})",
        f"✗ artifact a_gone of session {session_id}: file missing (/nope/x)",
    ]
    assert result.output.rstrip().endswith("3 problems found")


def test_a_damaged_database_is_reported_not_a_traceback(isolated_home):
    path = isolated_home / "sessions.db"
    conn = store.open_store(path)
    for _ in range(40):
        tool_round(conn, store.create_session(conn), "x" * 2000)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    data = bytearray(path.read_bytes())
    middle = len(data) // 4096 // 2
    data[middle * 4096 : (middle + 6) * 4096] = b"\xde\xad" * (6 * 2048)
    path.write_bytes(bytes(data))
    result = doctor()
    assert result.exit_code == 1
    assert "✗" in result.output and "Traceback" not in result.output


def test_a_non_sqlite_file_is_named_and_left_untouched(isolated_home, tmp_path):
    isolated_home.mkdir()
    path = isolated_home / "sessions.db"
    garbage = b"this is not a database\n" * 200
    path.write_bytes(garbage)
    env = lh_env(isolated_home, "http://127.0.0.1:9/v1")
    for args in (("hello",), ("doctor",), ("sessions",), ("doctor", "--repair"), ("-c", "hi")):
        done = run_lh(*args, env=env, cwd=tmp_path)
        assert done.returncode == 2, (args, done.stderr)
        assert done.stderr.strip().splitlines() == [
            f"Error: {path} is not a SQLite database (its first bytes are b'this is '); "
            "leharness leaves it untouched: move it away or set LEHARNESS_HOME"
        ]
    assert path.read_bytes() == garbage
    assert sorted(p.name for p in isolated_home.iterdir()) == ["sessions.db"]


def test_doctor_without_a_database_says_so(isolated_home):
    result = doctor()
    assert result.exit_code == 2
    assert f"no database at {isolated_home / 'sessions.db'}" in result.output
    assert not isolated_home.exists()


def test_another_programs_sqlite_file_is_refused_and_left_as_it_was(isolated_home, tmp_path):
    isolated_home.mkdir()
    path = isolated_home / "sessions.db"
    with closing(sqlite3.connect(path)) as other:
        other.execute("CREATE TABLE recipes (name TEXT)")
        other.execute("INSERT INTO recipes VALUES ('soup')")
        other.commit()
    before = path.read_bytes()
    done = run_lh("sessions", env=lh_env(isolated_home, "http://127.0.0.1:9/v1"), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"Error: {path} is a SQLite database but not a leharness one (it has tables recipes); "
        "leharness leaves it untouched: set LEHARNESS_HOME elsewhere"
    )
    assert path.read_bytes() == before


def test_doctor_on_an_empty_file_and_on_another_programs_database(isolated_home):
    isolated_home.mkdir()
    path = isolated_home / "sessions.db"
    path.write_bytes(b"")
    result = doctor()
    assert result.exit_code == 0, result.output
    assert "✓ no leharness schema yet: an empty database" in result.output
    path.unlink()
    with closing(sqlite3.connect(path)) as other:
        other.execute("CREATE TABLE recipes (name TEXT)")
    result = doctor()
    assert result.exit_code == 2
    assert "is a SQLite database but not a leharness one (it has tables recipes)" in result.output


def append_as_another_program(home: Path, event_type: str, data: str | bytes) -> tuple[str, int]:
    """What another program does: one row after the only session's last event, past lh's
    models (bytes are stored as TEXT as they are); (the session id, the row's session_seq)."""
    with closing(sqlite3.connect(home / "sessions.db")) as raw, raw:
        session_id, last = raw.execute("SELECT session_id, max(session_seq) FROM events").fetchone()
        raw.execute(
            "INSERT INTO events (id, session_id, session_seq, ts, type, data) VALUES "
            "(?, ?, ?, '2026-01-01T00:00:00.000Z', ?, CAST(? AS TEXT))",
            (f"x{last + 1}", session_id, last + 1, event_type, data),
        )
    return session_id, last + 1


def test_rows_another_program_inserted_are_reported_and_skipped_by_readers(isolated_home):
    with ScriptedServer([Text("one"), Text("two")]) as server:
        env = lh_env(isolated_home, server.base_url)
        assert run_lh("hi", env=env).returncode == 0
        session_id, first = append_as_another_program(isolated_home, "my.note", '{"note": "mine"}')
        append_as_another_program(isolated_home, "model.completed", '{"text": 5}')
        last = first - 1
        again = run_lh("-c", "go on", env=env)
        assert again.returncode == 0, again.stderr
        exported = run_lh("export", session_id, env=env)
        checked = run_lh("doctor", env=env)
    assert exported.returncode == 0 and "Traceback" not in exported.stderr
    assert f"lh: skipped event {last + 1} of session {session_id}" in exported.stderr
    types = [json.loads(line)["type"] for line in exported.stdout.splitlines()]
    assert "my.note" not in types and types.count("model.completed") == 2
    assert checked.returncode == 1
    lines = [line for line in checked.stdout.splitlines() if line.startswith("✗")]
    assert len(lines) == 2
    assert f"event {last + 1} of session {session_id}" in lines[0]
    assert "type 'my.note' is not one leharness knows" in lines[0]
    assert "invalid model.completed payload: text: Input should be a valid string" in lines[1]
    assert all("cannot be deleted" in line for line in lines)


def test_text_another_program_wrote_that_is_not_utf8_reads_as_replacement_chars(isolated_home):
    """SQLite keeps any bytes a program writes as TEXT; sqlite3's decoding stopped every
    query reaching such a value ("Could not decode to UTF-8"): `lh show`, the exports, a
    resume and even `lh doctor` ended in a traceback. Its bad bytes now read as U+FFFD
    (the row stays as written) and the doctor names the event."""
    with ScriptedServer([Text("one"), Text("two")]) as server:
        env = lh_env(isolated_home, server.base_url)
        assert run_lh("hi", env=env).returncode == 0
        session_id, seq = append_as_another_program(
            isolated_home, "invocation.received", b'{"text": "caf\xe9 au lait"}'
        )
        last = seq - 1
        again = run_lh("-c", "go on", env=env)
        shown = run_lh("show", session_id, env=env)
        exported = run_lh("export", "--format", "md", session_id, env=env)
        checked = run_lh("doctor", env=env)
        sent = server.requests[-1].messages
    for done in (again, shown, exported):
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr
    assert "caf\ufffd au lait" in shown.stdout and "caf\ufffd au lait" in exported.stdout
    assert {"role": "user", "content": "caf\ufffd au lait"} in sent
    with closing(sqlite3.connect(isolated_home / "sessions.db")) as raw:
        (stored,) = raw.execute(
            "SELECT CAST(data AS BLOB) FROM events WHERE session_seq = ?", (seq,)
        ).fetchone()
    assert stored == b'{"text": "caf\xe9 au lait"}'  # as written
    assert checked.returncode == 1
    (line,) = [line for line in checked.stdout.splitlines() if line.startswith("✗")]
    assert f"event {last + 1} of session {session_id}" in line
    assert "data is not UTF-8 (byte 0xe9 at 13)" in line and "U+FFFD" in line


def test_a_token_count_another_program_recorded_past_sqlites_integers_is_read(isolated_home):
    """The sessions projection sums each model call's usage: a count of 10**20 recorded
    by another program comes back from SQLite as a REAL, which SessionRow refused, and
    `lh export --format md` (and a resume) ended in a pydantic traceback."""
    with ScriptedServer([Text("one")]) as server:
        env = lh_env(isolated_home, server.base_url)
        assert run_lh("hi", env=env).returncode == 0
    usage = {"prompt_tokens": 10**20, "completion_tokens": 3}
    session_id, _seq = append_as_another_program(
        isolated_home, "model.completed", json.dumps({"text": "big", "usage": usage})
    )
    with closing(sqlite3.connect(isolated_home / "sessions.db")) as raw:
        (kind,) = raw.execute("SELECT typeof(prompt_tokens) FROM sessions").fetchone()
    assert kind == "real"
    for kind in ("md", "html", "atif"):
        done = run_lh("export", "--format", kind, session_id, env=env)
        assert done.returncode == 0, done.stderr
    shown = run_lh("show", session_id, env=env)
    assert shown.returncode == 0 and "big" in shown.stdout
