"""Full-text search over the conversation of every session (conversation_fts).

Queries use FTS5's own syntax (phrases, NEAR, prefix*, AND/OR/NOT); hits come
back ranked by bm25, best first, as plain records. Nothing here writes.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from leharness.store import StoreError
from leharness.store.text import storable

from .records import Record

# Markers around each matching term in a snippet: control characters no
# conversation text carries, so a renderer can replace them with its own style.
MARK_START = "\x02"
MARK_END = "\x03"
SNIPPET_TOKENS = 16
# Ranking reads each candidate's length: past this many matches, the newest are ranked
# (bench/fulltext: all 41,000 hits of two very common words took 150 ms, 5,000 take ~25).
RANK_WINDOW = 5_000


@dataclass(frozen=True)
class SearchFilters:
    """Narrow a search: one session, events since a timestamp, a role, a tool."""

    session_id: str | None = None
    since: str | None = None  # an ISO-8601 UTC timestamp, compared with the event's ts
    role: str | None = None  # user | assistant | tool
    tool: str | None = None  # a tool name: its results, errors and the calls asking for it


def search(
    conn: sqlite3.Connection,
    query: str,
    filters: SearchFilters | None = None,
    limit: int = 20,
) -> list[Record]:
    """The best `limit` hits for `query`: session, title, role, kind, tool, ts, snippet
    (matches between MARK_START and MARK_END) and rank. StoreError for a bad query.

    Ranking reads every candidate's length, so a query matching more than RANK_WINDOW
    messages ranks the newest RANK_WINDOW of them.
    """
    query = storable(query)  # a command-line byte that is not UTF-8 is searched as \xNN
    where, params = _filters(filters or SearchFilters())
    floor = _window_floor(conn, query, where, params)
    sql = (
        "SELECT c.session_id, c.session_seq, c.role, c.kind, c.tool, c.ts, s.title, "
        f"snippet(conversation_fts, 0, '{MARK_START}', '{MARK_END}', '…', {SNIPPET_TOKENS}) "
        "AS snippet, bm25(conversation_fts) AS rank "
        "FROM conversation_fts JOIN conversation AS c ON c.seq = conversation_fts.rowid "
        "LEFT JOIN sessions AS s ON s.id = c.session_id "
        f"WHERE conversation_fts MATCH ? AND conversation_fts.rowid >= ? {where} "
        "ORDER BY rank LIMIT ?"
    )
    return _run(conn, sql, (query, floor, *params, limit))


def _window_floor(conn: sqlite3.Connection, query: str, where: str, params: list[object]) -> int:
    """The lowest seq among the newest RANK_WINDOW matches (0 when there are fewer)."""
    sql = (
        f"SELECT conversation_fts.rowid FROM conversation_fts {_joined(where)} "
        f"WHERE conversation_fts MATCH ? {where} "
        f"ORDER BY conversation_fts.rowid DESC LIMIT 1 OFFSET {RANK_WINDOW - 1}"
    )
    rows = _run(conn, sql, (query, *params))
    return rows[0]["rowid"] if rows else 0


def _joined(where: str) -> str:
    """The join a filter needs; none without filters (it doubled a query's time)."""
    return "JOIN conversation AS c ON c.seq = conversation_fts.rowid" if where else ""


_SESSIONS_MATCHING = (
    "SELECT c.session_id AS id, s.title, count(*) AS hits, min(conversation_fts.rank) AS rank "
    "FROM conversation_fts JOIN conversation AS c ON c.seq = conversation_fts.rowid "
    "LEFT JOIN sessions AS s ON s.id = c.session_id "
    "WHERE conversation_fts MATCH ? GROUP BY c.session_id ORDER BY rank LIMIT ?"
)


def matching_session_ids(conn: sqlite3.Connection, query: str, limit: int = 50) -> list[str]:
    """The ids of the sessions whose conversation matches `query`, best first: what a
    picker filtering on every keystroke needs (no snippets)."""
    return [row.id for row in _run(conn, _SESSIONS_MATCHING, (query, limit))]


def search_sessions(conn: sqlite3.Connection, query: str, limit: int = 50) -> list[Record]:
    """Sessions whose conversation matches `query`, best match first: id, title, hits and
    the best hit's snippet."""
    sessions = _run(conn, _SESSIONS_MATCHING, (query, limit))
    for row in sessions:  # snippet() cannot run inside an aggregate: one query per session
        best = search(conn, query, SearchFilters(session_id=row.id), limit=1)
        row["snippet"] = best[0].snippet if best else ""
    return sessions


def plain_snippet(snippet: str, start: str = "", end: str = "") -> str:
    """A snippet with its markers replaced (by nothing, or `start`/`end`)."""
    return snippet.replace(MARK_START, start).replace(MARK_END, end)


def _filters(filters: SearchFilters) -> tuple[str, list[object]]:
    clauses: list[str] = []
    params: list[object] = []
    if filters.session_id:
        clauses.append("c.session_id = ?")
        params.append(filters.session_id)
    if filters.since:
        clauses.append("c.ts >= ?")
        params.append(filters.since)
    if filters.role:
        clauses.append("c.role = ?")
        params.append(filters.role)
    if filters.tool:
        clauses.append("instr(',' || coalesce(c.tool, '') || ',', ',' || ? || ',') > 0")
        params.append(filters.tool)
    return "".join(f" AND {clause}" for clause in clauses), params


# What SQLite says about a MATCH expression it cannot parse.
_QUERY_ERRORS = ("fts5", "syntax error", "unterminated string", "no such column", "unknown special")


def _run(conn: sqlite3.Connection, sql: str, params: tuple[object, ...]) -> list[Record]:
    try:
        rows = conn.execute(sql, params).fetchall()
    except sqlite3.OperationalError as error:
        message = str(error)
        if any(sign in message for sign in _QUERY_ERRORS):
            raise StoreError(
                f'not a valid search query ({message}); use words, "a phrase", prefix*, '
                "NEAR(a b), AND, OR, NOT"
            ) from None
        raise
    return [Record(zip(row.keys(), row, strict=True)) for row in rows]
