-- tool_calls: one row per tool call the model requested, from request to
-- result. Created from model.completed's tool_calls list (json_each), then
-- moved along by tool.started / tool.completed / tool.failed / task.started.
CREATE TABLE tool_calls (
    session_id TEXT NOT NULL,
    call_id TEXT NOT NULL,
    model_seq INTEGER NOT NULL,          -- session_seq of the model.completed that asked
    position INTEGER NOT NULL,           -- index within that reply
    name TEXT NOT NULL,
    arguments TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'requested',  -- requested | running | completed | failed
    requested_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    duration_ms INTEGER,
    error TEXT,
    error_kind TEXT,
    artifact_id TEXT,
    task_id TEXT,
    PRIMARY KEY (session_id, call_id)
) WITHOUT ROWID;

CREATE INDEX tool_calls_name ON tool_calls (name);
-- Calls still waiting for a result: read at the start of every invocation.
CREATE INDEX tool_calls_open ON tool_calls (session_id)
    WHERE status IN ('requested', 'running');
-- The tool_failures view: failures are few, so it reads only them.
CREATE INDEX tool_calls_failed ON tool_calls (session_id) WHERE status = 'failed';

CREATE TRIGGER proj_tool_calls_requested AFTER INSERT ON events
WHEN NEW.type = 'model.completed' AND json_array_length(NEW.data, '$.tool_calls') > 0
BEGIN
    INSERT INTO tool_calls (session_id, call_id, model_seq, position, name, arguments, requested_at)
    SELECT NEW.session_id, json_extract(value, '$.id'), NEW.session_seq, key,
           json_extract(value, '$.name'), coalesce(json_extract(value, '$.arguments'), '{}'), NEW.ts
    FROM json_each(NEW.data, '$.tool_calls');
END;

CREATE TRIGGER proj_tool_calls_started AFTER INSERT ON events
WHEN NEW.type = 'tool.started'
BEGIN
    UPDATE tool_calls SET status = 'running', started_at = NEW.ts
    WHERE session_id = NEW.session_id AND call_id = json_extract(NEW.data, '$.call_id');
END;

CREATE TRIGGER proj_tool_calls_finished AFTER INSERT ON events
WHEN NEW.type IN ('tool.completed', 'tool.failed')
BEGIN
    UPDATE tool_calls SET
        status = CASE NEW.type WHEN 'tool.completed' THEN 'completed' ELSE 'failed' END,
        finished_at = NEW.ts,
        duration_ms = coalesce(json_extract(NEW.data, '$.duration_ms'),
            CAST(round((julianday(NEW.ts) - julianday(coalesce(started_at, requested_at)))
                       * 86400000) AS INTEGER)),
        error = json_extract(NEW.data, '$.error'),
        error_kind = CASE NEW.type WHEN 'tool.failed' THEN json_extract(NEW.data, '$.kind') END,
        artifact_id = json_extract(NEW.data, '$.artifact_id')
    WHERE session_id = NEW.session_id AND call_id = json_extract(NEW.data, '$.call_id');
END;

CREATE TRIGGER proj_tool_calls_task AFTER INSERT ON events
WHEN NEW.type = 'task.started' AND json_extract(NEW.data, '$.call_id') IS NOT NULL
BEGIN
    UPDATE tool_calls SET task_id = json_extract(NEW.data, '$.task_id')
    WHERE session_id = NEW.session_id AND call_id = json_extract(NEW.data, '$.call_id');
END;

-- approvals_always: the tools the user answered "always" for (--approval ask), per
-- session. They are not asked about again for the rest of the session, also after
-- `lh -c`, `/resume` or a fork: the loop reads this table, not its memory. The tool's
-- name comes from the call's own row above (made by the model.completed that asked).
CREATE TABLE approvals_always (
    session_id TEXT NOT NULL,
    name TEXT NOT NULL,
    call_id TEXT NOT NULL,               -- the call whose approval was answered "always"
    decided_at TEXT NOT NULL,
    PRIMARY KEY (session_id, name)
) WITHOUT ROWID;

CREATE TRIGGER proj_approvals_always AFTER INSERT ON events
WHEN NEW.type = 'approval.decided' AND json_extract(NEW.data, '$.decision') = 'always'
BEGIN
    INSERT OR IGNORE INTO approvals_always (session_id, name, call_id, decided_at)
    SELECT NEW.session_id, name, call_id, NEW.ts FROM tool_calls
    WHERE session_id = NEW.session_id AND call_id = json_extract(NEW.data, '$.call_id');
END;
