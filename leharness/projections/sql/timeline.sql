-- timeline: one row per step, model call, tool call, background task and
-- subagent, with start, end, duration and status; the session_timeline view
-- and the inspector's chart read it. The event that starts a thing opens its
-- row, the one that ends it closes it. Updates find open rows through the
-- partial index timeline_open (named: the planner would scan the session's
-- whole key range), so a write costs the same at any history length.
CREATE TABLE timeline (
    session_id TEXT NOT NULL,
    seq INTEGER NOT NULL,                -- session_seq of the event that opened the row
    kind TEXT NOT NULL,                  -- step | model | tool | task | subagent
    ref TEXT NOT NULL,                   -- the step's seq, the call_id or the task_id
    label TEXT,                          -- step N, model name, tool name, command or prompt
    started_at TEXT NOT NULL,
    finished_at TEXT,
    duration_ms INTEGER,
    status TEXT NOT NULL DEFAULT 'running',  -- running | completed | failed | cancelled | interrupted
    child_session_id TEXT,               -- a subagent's session
    PRIMARY KEY (session_id, seq, kind, ref)
) WITHOUT ROWID;

CREATE INDEX timeline_open ON timeline (session_id, kind) WHERE finished_at IS NULL;

-- A step ends where the next one starts; a model call still open then never
-- answered (lh died) and is closed as interrupted.
CREATE TRIGGER proj_timeline_step AFTER INSERT ON events
WHEN NEW.type = 'step.started'
BEGIN
    UPDATE timeline SET finished_at = NEW.ts, status = 'interrupted',
        duration_ms = CAST(round((julianday(NEW.ts) - julianday(started_at)) * 86400000) AS INTEGER)
    WHERE (session_id, seq, kind, ref) IN (
        SELECT session_id, seq, kind, ref FROM timeline INDEXED BY timeline_open
        WHERE session_id = NEW.session_id AND kind = 'model' AND finished_at IS NULL);
    UPDATE timeline SET finished_at = NEW.ts,
        duration_ms = CAST(round((julianday(NEW.ts) - julianday(started_at)) * 86400000) AS INTEGER),
        status = coalesce((SELECT m.status FROM timeline AS m
                           WHERE m.session_id = timeline.session_id AND m.seq = timeline.seq
                             AND m.kind = 'model' AND m.ref = timeline.ref), 'completed')
    WHERE (session_id, seq, kind, ref) IN (
        SELECT session_id, seq, kind, ref FROM timeline INDEXED BY timeline_open
        WHERE session_id = NEW.session_id AND kind = 'step' AND finished_at IS NULL);
    INSERT INTO timeline (session_id, seq, kind, ref, label, started_at)
    VALUES (NEW.session_id, NEW.session_seq, 'step', NEW.session_seq,
            'step ' || coalesce(json_extract(NEW.data, '$.step'), '?'), NEW.ts),
           (NEW.session_id, NEW.session_seq, 'model', NEW.session_seq,
            coalesce(json_extract(NEW.data, '$.model'), 'model'), NEW.ts);
END;

CREATE TRIGGER proj_timeline_model AFTER INSERT ON events
WHEN NEW.type IN ('model.completed', 'model.failed', 'model.cancelled')
BEGIN
    UPDATE timeline SET finished_at = NEW.ts, status = substr(NEW.type, 7),
        duration_ms = CAST(round((julianday(NEW.ts) - julianday(started_at)) * 86400000) AS INTEGER)
    WHERE (session_id, seq, kind, ref) IN (
        SELECT session_id, seq, kind, ref FROM timeline INDEXED BY timeline_open
        WHERE session_id = NEW.session_id AND kind = 'model' AND finished_at IS NULL);
END;

-- The end of an invocation, or a new one after a crash, closes what is open
-- of the loop's own work (tool calls get their own, possibly synthetic, results).
CREATE TRIGGER proj_timeline_invocation AFTER INSERT ON events
WHEN NEW.type IN ('agent.finished', 'invocation.received', 'invocation.auto')
BEGIN
    UPDATE timeline SET finished_at = NEW.ts, status = 'interrupted',
        duration_ms = CAST(round((julianday(NEW.ts) - julianday(started_at)) * 86400000) AS INTEGER)
    WHERE (session_id, seq, kind, ref) IN (
        SELECT session_id, seq, kind, ref FROM timeline INDEXED BY timeline_open
        WHERE session_id = NEW.session_id AND kind = 'model' AND finished_at IS NULL);
    UPDATE timeline SET finished_at = NEW.ts,
        duration_ms = CAST(round((julianday(NEW.ts) - julianday(started_at)) * 86400000) AS INTEGER),
        status = coalesce((SELECT m.status FROM timeline AS m
                           WHERE m.session_id = timeline.session_id AND m.seq = timeline.seq
                             AND m.kind = 'model' AND m.ref = timeline.ref), 'completed')
    WHERE (session_id, seq, kind, ref) IN (
        SELECT session_id, seq, kind, ref FROM timeline INDEXED BY timeline_open
        WHERE session_id = NEW.session_id AND kind = 'step' AND finished_at IS NULL);
END;

CREATE TRIGGER proj_timeline_tool_requested AFTER INSERT ON events
WHEN NEW.type = 'model.completed' AND json_array_length(NEW.data, '$.tool_calls') > 0
BEGIN
    INSERT INTO timeline (session_id, seq, kind, ref, label, started_at, status)
    SELECT NEW.session_id, NEW.session_seq, 'tool', json_extract(value, '$.id'),
           json_extract(value, '$.name'), NEW.ts, 'requested'
    FROM json_each(NEW.data, '$.tool_calls');
END;

CREATE TRIGGER proj_timeline_tool_started AFTER INSERT ON events
WHEN NEW.type = 'tool.started'
BEGIN
    UPDATE timeline SET started_at = NEW.ts, status = 'running'
    WHERE (session_id, seq, kind, ref) IN (
        SELECT session_id, seq, kind, ref FROM timeline INDEXED BY timeline_open
        WHERE session_id = NEW.session_id AND kind = 'tool' AND finished_at IS NULL
          AND ref = json_extract(NEW.data, '$.call_id'));
END;

CREATE TRIGGER proj_timeline_tool_finished AFTER INSERT ON events
WHEN NEW.type IN ('tool.completed', 'tool.failed')
BEGIN
    UPDATE timeline SET finished_at = NEW.ts, status = substr(NEW.type, 6),
        duration_ms = CAST(round((julianday(NEW.ts) - julianday(started_at)) * 86400000) AS INTEGER)
    WHERE (session_id, seq, kind, ref) IN (
        SELECT session_id, seq, kind, ref FROM timeline INDEXED BY timeline_open
        WHERE session_id = NEW.session_id AND kind = 'tool' AND finished_at IS NULL
          AND ref = json_extract(NEW.data, '$.call_id'));
END;

CREATE TRIGGER proj_timeline_task_started AFTER INSERT ON events
WHEN NEW.type = 'task.started'
BEGIN
    INSERT INTO timeline (session_id, seq, kind, ref, label, started_at, child_session_id)
    VALUES (NEW.session_id, NEW.session_seq,
            CASE json_extract(NEW.data, '$.kind') WHEN 'agent' THEN 'subagent' ELSE 'task' END,
            json_extract(NEW.data, '$.task_id'),
            coalesce(json_extract(NEW.data, '$.command'), json_extract(NEW.data, '$.prompt'),
                     json_extract(NEW.data, '$.kind')),
            NEW.ts, json_extract(NEW.data, '$.child_session_id'));
END;

CREATE TRIGGER proj_timeline_task_finished AFTER INSERT ON events
WHEN NEW.type IN ('task.completed', 'task.failed', 'task.cancelled')
BEGIN
    UPDATE timeline SET finished_at = NEW.ts, status = substr(NEW.type, 6),
        duration_ms = CAST(round((julianday(NEW.ts) - julianday(started_at)) * 86400000) AS INTEGER)
    WHERE (session_id, seq, kind, ref) IN (
        SELECT session_id, seq, kind, ref FROM timeline INDEXED BY timeline_open
        WHERE session_id = NEW.session_id AND kind IN ('task', 'subagent') AND finished_at IS NULL
          AND ref = json_extract(NEW.data, '$.task_id'));
END;
