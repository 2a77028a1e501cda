"""Merging other `sessions.db` files into this one, keeping session and event ids.

`lh merge` brings a fleet's histories (every trial of a Harbor job has its own
database) into one file. Each source file is copied in one transaction: its
events go in through the ordinary insert, so the projection triggers build the
rows as for any append, or, for whole new sessions from a file with our
projections, together with the rows its triggers built (merge_copy.py).
Merging is idempotent: a session already here with the same events adds
nothing, one that grew since adds only its new tail, and one whose events
differ from ours (same session id, different event ids) is a conflict and the
whole file is refused, as is a damaged one. The source is copied with
INSERT … SELECT from `src`: the file ATTACHed, or the in-memory copy a stager thread
read while the previous file was merged (merge_stage.py); one file at most waits
ahead, so memory stays flat in the number of files. WAL checkpoints run on a thread
of their own meanwhile (checkpointer.py).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .checkpointer import Checkpointer
from .connection import (
    DB_FILENAME,
    FileStamp,
    StoreError,
    check_is_sqlite,
    main_file,
    write_transaction,
)
from .log import last_seq
from .merge_copy import EVENT_COLUMNS, FastCopy, FileSchema, SourceCounts, read_schema
from .merge_stage import STAGE_LIMIT, Staged, Stager, _at_rest, layout
from .schema import SCHEMA_VERSION
from .trials import TrialRow, find_trial_results, read_trial, record_trial, trial_of
from .triggers import trigger_switch

CHECKPOINT_PAGES = 10_000  # ~40 MB of WAL: then the WAL starts again from its beginning
# A background checkpoint every 10 files (~2,000 pages): pages that every file rewrites
# (b-tree edges, the FTS index's structure) go to the database file once per checkpoint
# (after every file: +1.5 ms of CPU a file, measured).
CHECKPOINT_EVERY = 10


class MergeConflict(StoreError):
    """A session in the source file has other events than the session of that id here."""


@dataclass
class Merged:
    """What merging one file did."""

    path: Path
    sessions_added: int = 0
    sessions_extended: int = 0
    sessions_unchanged: int = 0
    events_added: int = 0
    trial: str | None = None


def find_databases(paths: Iterable[Path]) -> list[Path]:
    """Every `sessions.db` under the given folders, and the given files themselves,
    sorted and without duplicates."""
    found: set[Path] = set()
    for path in paths:
        if path.is_dir():
            found.update(p.resolve() for p in path.rglob(DB_FILENAME) if p.is_file())
        elif path.exists():
            found.add(path.resolve())
        else:
            raise StoreError(f"{path}: no such file or folder")
    return sorted(found)


class Merger:
    """Merges files one after the other into `conn`, remembering what they share (the
    copy statements, whether a source schema's projection rows can be copied: a fleet's
    files all have the same schema, so one comparison)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._fast = FastCopy(conn, trigger_switch(conn))
        self._events_sql = read_schema(conn, "main").events_sql
        self._uri = _uri_filenames(conn)
        self.trial_files: set[Path] = set()  # result.json files recorded so far
        # Checkpoints on the other core while this connection writes (checkpointer.py):
        # ~1 ms of each file's COMMIT, more on a slow disk's syncs.
        self._checkpoints = Checkpointer(conn, CHECKPOINT_PAGES, CHECKPOINT_EVERY)
        self._stager: Stager | None = None
        self._src_layout: tuple[bytes, str] | None = None  # the kept `src`'s (_load_src)

    def prefetch(self, paths: Sequence[Path]) -> None:
        """Say which files merge() will be called with, in order: a thread then reads
        each next file while this one is merged (merge_stage.py)."""
        if self._stager is None and hasattr(self.conn, "deserialize"):
            self._stager = Stager(paths, STAGE_LIMIT, Path(main_file(self.conn)))

    def __enter__(self) -> Merger:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the threads; the connection stays open."""
        if self._stager is not None:
            self._stager.close()
        self._checkpoints.close()
        self._fast.release()
        self._drop_src()

    def merge(self, path: Path) -> Merged:
        ready = self._stager.take(path) if self._stager is not None else None
        found = ready.trial if ready is not None else trial_of(path)
        trial = found[1] if found else None
        if ready is not None and ready.staged is not None:
            merged = self._merge_staged(path, trial, ready.staged)
        else:
            merged = self._merge(path, trial)
        if found:
            self.trial_files.add(found[0])
        return merged

    def _merge_staged(self, path: Path, trial: TrialRow | None, staged: Staged) -> Merged:
        """Merge the file from the stager's copy of it, deserialized as `src`."""
        _check_schema(path, staged.version, staged.schema)
        self._load_src(staged.data)
        return self._merge_src(path, trial, staged.schema, None, staged.counts)

    def _load_src(self, data: bytearray) -> None:
        """`data` as `src`, which stays attached from one staged file to the next.

        ATTACH and DETACH expire every statement the connection has prepared (as turning
        triggers or CHECKs on and off does: see FastCopy.copy), so each file's copies and
        queries were compiled again, the copy of the events with `events`' ~50 triggers.
        A statement prepared for one file reads the next one at the root pages it was
        compiled with (SQLite prepares it again only when the schema cookie differs): when
        the new file's schema (its objects, their SQL and root pages, and its header's
        schema format) is not the last one's, `src` is attached afresh, which expires them
        all."""
        if self._src_layout is not None:
            try:
                self.conn.deserialize(data, name="src")
                if layout(self.conn, "src", data) == self._src_layout:
                    return
            except sqlite3.Error:
                pass  # attached afresh below, where an error is the file's
        self._drop_src()
        self.conn.execute("ATTACH DATABASE ':memory:' AS src")
        try:
            self.conn.deserialize(data, name="src")
            self._src_layout = layout(self.conn, "src", data)
        except BaseException:
            self.conn.execute("DETACH DATABASE src")
            raise

    def _drop_src(self) -> None:
        """Detach the staged files' `src`, if attached."""
        if self._src_layout is not None:
            self._src_layout = None
            self.conn.execute("DETACH DATABASE src")

    def _merge(self, path: Path, trial: TrialRow | None) -> Merged:
        _check_source(path)
        stamp = _at_rest(path) if self._uri else None
        if stamp is not None:
            try:
                return self._merge_file(path, trial, stamp)
            except _Written:
                pass  # written while it was read: read it again the ordinary way
        return self._merge_file(path, trial, None)

    def _merge_file(self, path: Path, trial: TrialRow | None, stamp: FileStamp | None) -> Merged:
        """Attach the file (immutable when `stamp` says it is at rest: SQLite then neither
        locks it nor looks for its WAL, ~0.5 ms a file), merge it, detach it."""
        name = f"{path.resolve().as_uri()}?mode=ro&immutable=1" if stamp else str(path)
        self._fast.release()
        self._drop_src()
        try:
            self.conn.execute("ATTACH DATABASE ? AS src", (name,))
        except sqlite3.DatabaseError as error:  # SQLite reads its schema on ATTACH
            problem = str(error).replace(f": {name}", "")
            raise StoreError(f"{path} is not a usable SQLite database ({problem})") from None
        try:
            return self._merge_src(path, trial, None, stamp)
        finally:
            self.conn.execute("DETACH DATABASE src")

    def _merge_src(
        self,
        path: Path,
        trial: TrialRow | None,
        schema: FileSchema | None,
        stamp: FileStamp | None,
        counts: SourceCounts | None = None,
    ) -> Merged:
        """Merge the attached `src` in one transaction (`schema` and `counts`: what the
        stager read of it; None: read it here)."""
        result = Merged(path)
        try:
            with write_transaction(self.conn):
                self._merge_attached(
                    path, result, trial, schema or _check_attached(self.conn, path), counts
                )
                if stamp is not None and _at_rest(path) != stamp:
                    raise _Written
        except sqlite3.IntegrityError as error:  # an event id already here in another session
            raise MergeConflict(
                f"{path}: its events clash with events already here ({error}); "
                "nothing of this file was merged"
            ) from None
        except sqlite3.DatabaseError as error:
            if _intact(self.conn):
                raise  # not the file's fault: this database's (the CLI says so)
            raise StoreError(
                f"{path} is damaged ({error}); nothing of this file was merged"
            ) from None
        self._checkpoints.committed()
        return result

    def _merge_attached(
        self,
        path: Path,
        result: Merged,
        trial: TrialRow | None,
        schema: FileSchema,
        counts: SourceCounts | None,
    ) -> None:
        conn = self.conn
        have, contiguous, sessions = _plan(conn, path, result, counts)
        if have and contiguous and not (result.sessions_extended or result.sessions_unchanged):
            added = None
            if self._fast.applies(schema):
                total = sum(sessions.values())
                # A staged file's `src` stays attached for the next one: so may the
                # copy's settings (FastCopy.copy's `hold`).
                kept = self._src_layout is not None
                added = self._fast.copy(total, self._ours(schema), counts, hold=kept)
            if added is None:  # not our projections, or seqs with gaps: through the triggers
                self._fast.release()
                _copy_events(conn, have, result)
            else:
                result.events_added += added
        elif have:
            self._fast.release()
            _copy_events(conn, have, result)
        if trial is not None:
            # CHECKs may still be off here (a held fast copy): read_trial's two JSON
            # columns are json.dumps of what json.loads read, NaN and Infinity as null.
            record_trial(conn, trial)
            conn.executemany(
                "INSERT OR REPLACE INTO trial_sessions (session_id, trial_id) VALUES (?, ?)",
                ((session_id, trial.trial_id) for session_id in sessions),
            )
            result.trial = trial.trial

    def _ours(self, schema: FileSchema) -> bool:
        """Whether the file's events table is ours (same SQL: its CHECKs held)."""
        return schema.events_sql == self._events_sql


class _Written(StoreError):
    """The file changed while it was read as immutable (caught inside the merge: it is
    read again the ordinary way; a StoreError like every error of the store)."""


def _uri_filenames(conn: sqlite3.Connection) -> bool:
    """Whether ATTACH reads a `file:` URI as one (SQLite built with SQLITE_USE_URI, as
    Debian's and Python's own builds are); otherwise it would name a new file."""
    return bool(
        conn.execute(
            "SELECT 1 FROM pragma_compile_options WHERE compile_options = 'USE_URI=1' "
            "OR compile_options = 'USE_URI'"
        ).fetchone()
    )


def merge_trials(
    conn: sqlite3.Connection, paths: Iterable[Path], recorded: Collection[Path] = ()
) -> int:
    """Record every trial whose result.json is under the given paths (trials without a
    database too, e.g. the oracle's), but for the `recorded` ones (read and recorded
    with their database already); return how many trials there are."""
    files = find_trial_results(paths)
    rows = [row for f in files if f not in recorded and (row := read_trial(f)) is not None]
    with write_transaction(conn):
        for row in rows:
            record_trial(conn, row)
    return len(rows) + sum(1 for f in files if f in recorded)


def _plan(
    conn: sqlite3.Connection, path: Path, result: Merged, source: SourceCounts | None = None
) -> tuple[dict[str, int], bool, dict[str, int]]:
    """({session id: how many of its events are here already} for the sessions that
    have events to add, whether every session of the file numbers its events 1..n
    without gaps, {session id: its events in the file} for every session of the file);
    raises MergeConflict when a session's events differ. One indexed query gives every
    session's count here and in the file (or, with the file's side counted by the
    stager, one index probe a session here)."""
    todo: dict[str, int] = {}
    sessions: dict[str, int] = {}
    contiguous = True
    if source is None:
        counts = conn.execute(
            "SELECT s.session_id, s.top, s.n = s.top AND s.low = 1, "
            "(SELECT coalesce(max(m.session_seq), 0) FROM main.events AS m "
            "WHERE m.session_id = s.session_id) "
            "FROM (SELECT session_id, max(session_seq) AS top, min(session_seq) AS low, "
            "count(*) AS n FROM src.events GROUP BY session_id) AS s"
        ).fetchall()
    else:
        counts = [
            # last_seq reads `events`, which names main's before an attached file's
            (session_id, top, gapless, last_seq(conn, session_id))
            for session_id, top, gapless in source.sessions
        ]
    for session_id, count, gapless, here in counts:
        sessions[session_id] = count
        contiguous = contiguous and bool(gapless)
        if here == 0:
            result.sessions_added += 1
            todo[session_id] = 0
            continue
        overlap = min(here, count)
        ours, theirs = (
            _ids(conn, "main", session_id, overlap),
            _ids(conn, "src", session_id, overlap),
        )
        if ours != theirs or here > count:
            raise MergeConflict(
                f"{path}: session {session_id} is already here with other events "
                f"({here} here, {count} in the file, first difference at event "
                f"{_first_difference(ours, theirs)}); nothing of this file was merged"
            )
        if count > here:
            result.sessions_extended += 1
            todo[session_id] = here
        else:
            result.sessions_unchanged += 1
    return todo, contiguous, sessions


def _ids(conn: sqlite3.Connection, schema: str, session_id: str, upto: int) -> list[str]:
    return [
        event_id
        for (event_id,) in conn.execute(
            f"SELECT id FROM {schema}.events WHERE session_id = ? AND session_seq <= ? "
            "ORDER BY session_seq",
            (session_id, upto),
        )
    ]


def _first_difference(ours: list[str], theirs: list[str]) -> int:
    for number, (a, b) in enumerate(zip(ours, theirs, strict=False), 1):
        if a != b:
            return number
    return min(len(ours), len(theirs)) + 1


def _copy_events(conn: sqlite3.Connection, have: dict[str, int], result: Merged) -> None:
    """The source's events this database lacks, in the source's global order (a
    subagent's events after the parent's that started it), through the triggers."""
    conn.execute("CREATE TEMP TABLE merge_todo (session_id TEXT PRIMARY KEY, start INTEGER)")
    try:
        conn.executemany("INSERT INTO temp.merge_todo VALUES (?, ?)", have.items())
        result.events_added += conn.execute(
            f"INSERT INTO main.events ({EVENT_COLUMNS}) "
            f"SELECT {_qualified('e')} FROM src.events AS e "
            "JOIN temp.merge_todo AS todo ON todo.session_id = e.session_id "
            "WHERE e.session_seq > todo.start ORDER BY e.seq"
        ).rowcount
    finally:
        conn.execute("DROP TABLE temp.merge_todo")


def _qualified(alias: str) -> str:
    return ", ".join(f"{alias}.{column.strip()}" for column in EVENT_COLUMNS.split(","))


def _intact(conn: sqlite3.Connection) -> bool:
    """Whether the attached source passes SQLite's quick check (after an error)."""
    try:
        return [tuple(row) for row in conn.execute("PRAGMA src.quick_check(1)")] == [("ok",)]
    except sqlite3.DatabaseError:
        return False


def _check_source(path: Path) -> None:
    """Before attaching: a SQLite file (16 bytes read), not this database itself."""
    try:
        check_is_sqlite(path)
    except StoreError as error:
        raise StoreError(f"{path}: {error}") from None
    if not path.is_file():
        raise StoreError(f"{path}: no such file")


def _check_attached(conn: sqlite3.Connection, path: Path) -> FileSchema:
    """The attached file's schema, after checking it is a leharness database we can read."""
    try:
        version = conn.execute("PRAGMA src.user_version").fetchone()[0]
        schema = read_schema(conn, "src")
    except sqlite3.DatabaseError as error:
        raise StoreError(f"{path} is not a usable SQLite database ({error})") from None
    _check_schema(path, version, schema)
    return schema


def _check_schema(path: Path, version: int, schema: FileSchema) -> None:
    if schema.events_sql is None:
        raise StoreError(f"{path} is not a leharness database (no events table)")
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path} has schema version {version}, newer than this leharness "
            f"understands ({SCHEMA_VERSION}); upgrade leharness to merge it"
        )
