-- The event log: the one source of truth. Append-only, one contiguous
-- session_seq 1..n per session. Every other table is a projection of it.
CREATE TABLE events (
    seq INTEGER PRIMARY KEY,            -- global order of appends
    id TEXT NOT NULL UNIQUE,            -- ULID
    session_id TEXT NOT NULL,
    session_seq INTEGER NOT NULL,       -- 1..n within the session, no gaps
    ts TEXT NOT NULL,                   -- UTC ISO-8601, e.g. 2026-11-24T10:00:00.000Z
    type TEXT NOT NULL,
    data TEXT NOT NULL CHECK (json_valid(data)),
    UNIQUE (session_id, session_seq)
);

CREATE INDEX events_type ON events (type);

-- Guards live in the database: Python checks give friendly errors, these give truth.
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only');
END;

CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only');
END;

CREATE TRIGGER events_contiguous_seq BEFORE INSERT ON events
WHEN NEW.session_seq IS NOT (
    SELECT coalesce(max(session_seq), 0) + 1 FROM events WHERE session_id = NEW.session_id
)
BEGIN
    SELECT RAISE(ABORT, 'session_seq must be the session''s max + 1');
END;
