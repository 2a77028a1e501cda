-- timeline: one row per step, model call, tool call, background task and
-- subagent, with start, end, duration and status; the session_timeline view
-- and the inspector's chart read it. The event that starts a thing opens its
-- row, the one that ends it closes it, each by primary key: a step's ref is
-- its session_seq as an INTEGER (the column has no type affinity, so integers
-- stay integers), which makes the latest step a max() over the key. One
-- b-tree and no secondary index: it adds as little as it can to each append.
CREATE TABLE timeline (
    session_id TEXT NOT NULL,
    kind TEXT NOT NULL,                  -- step | model | tool | task | subagent
    ref NOT NULL,                        -- the step's session_seq, the call_id or the task_id
    label TEXT,                          -- step N, model name, tool name, command or prompt
    started_at TEXT NOT NULL,
    finished_at TEXT,
    duration_ms INTEGER,
    status TEXT NOT NULL DEFAULT 'running',  -- requested | running | completed | failed | cancelled | interrupted
    child_session_id TEXT,               -- a subagent's session
    PRIMARY KEY (session_id, kind, ref)
) WITHOUT ROWID;

-- A step ends where the next one starts or where the invocation finishes.
-- A model call still open then never answered (lh died): it ends as
-- interrupted. The step takes its model call's status, read so that it does
-- not matter which of the two rows SQLite updates first.
CREATE TRIGGER proj_timeline_step AFTER INSERT ON events
WHEN NEW.type = 'step.started'
BEGIN
    UPDATE timeline SET finished_at = NEW.ts,
        duration_ms = CAST(round((julianday(NEW.ts) - julianday(started_at)) * 86400000) AS INTEGER),
        status = CASE kind WHEN 'model' THEN 'interrupted' ELSE coalesce(
            (SELECT CASE WHEN m.finished_at IS NULL THEN 'interrupted' ELSE m.status END
             FROM timeline AS m
             WHERE m.session_id = timeline.session_id AND m.kind = 'model' AND m.ref = timeline.ref),
            'completed') END
    WHERE session_id = NEW.session_id AND kind IN ('step', 'model') AND finished_at IS NULL
      AND ref = (SELECT max(ref) FROM timeline WHERE session_id = NEW.session_id AND kind = 'step');
    INSERT INTO timeline (session_id, kind, ref, label, started_at)
    VALUES (NEW.session_id, 'step', NEW.session_seq,
            'step ' || coalesce(json_extract(NEW.data, '$.step'), '?'), NEW.ts),
           (NEW.session_id, 'model', NEW.session_seq,
            coalesce(json_extract(NEW.data, '$.model'), 'model'), NEW.ts);
END;

CREATE TRIGGER proj_timeline_finished AFTER INSERT ON events
WHEN NEW.type = 'agent.finished'
BEGIN
    UPDATE timeline SET finished_at = NEW.ts,
        duration_ms = CAST(round((julianday(NEW.ts) - julianday(started_at)) * 86400000) AS INTEGER),
        status = CASE kind WHEN 'model' THEN 'interrupted' ELSE coalesce(
            (SELECT CASE WHEN m.finished_at IS NULL THEN 'interrupted' ELSE m.status END
             FROM timeline AS m
             WHERE m.session_id = timeline.session_id AND m.kind = 'model' AND m.ref = timeline.ref),
            'completed') END
    WHERE session_id = NEW.session_id AND kind IN ('step', 'model') AND finished_at IS NULL
      AND ref = (SELECT max(ref) FROM timeline WHERE session_id = NEW.session_id AND kind = 'step');
END;

CREATE TRIGGER proj_timeline_model AFTER INSERT ON events
WHEN NEW.type IN ('model.completed', 'model.failed', 'model.cancelled')
BEGIN
    UPDATE timeline SET finished_at = NEW.ts, status = substr(NEW.type, 7),
        duration_ms = CAST(round((julianday(NEW.ts) - julianday(started_at)) * 86400000) AS INTEGER)
    WHERE session_id = NEW.session_id AND kind = 'model' AND finished_at IS NULL
      AND ref = (SELECT max(ref) FROM timeline WHERE session_id = NEW.session_id AND kind = 'model');
END;

CREATE TRIGGER proj_timeline_tool_requested AFTER INSERT ON events
WHEN NEW.type = 'model.completed' AND json_array_length(NEW.data, '$.tool_calls') > 0
BEGIN
    INSERT INTO timeline (session_id, kind, ref, label, started_at, status)
    SELECT NEW.session_id, 'tool', json_extract(value, '$.id'), json_extract(value, '$.name'),
           NEW.ts, 'requested'
    FROM json_each(NEW.data, '$.tool_calls');
END;

CREATE TRIGGER proj_timeline_tool_started AFTER INSERT ON events
WHEN NEW.type = 'tool.started'
BEGIN
    UPDATE timeline SET started_at = NEW.ts, status = 'running'
    WHERE session_id = NEW.session_id AND kind = 'tool'
      AND ref = json_extract(NEW.data, '$.call_id');
END;

CREATE TRIGGER proj_timeline_tool_finished AFTER INSERT ON events
WHEN NEW.type IN ('tool.completed', 'tool.failed')
BEGIN
    UPDATE timeline SET finished_at = NEW.ts, status = substr(NEW.type, 6),
        duration_ms = CAST(round((julianday(NEW.ts) - julianday(started_at)) * 86400000) AS INTEGER)
    WHERE session_id = NEW.session_id AND kind = 'tool'
      AND ref = json_extract(NEW.data, '$.call_id');
END;

CREATE TRIGGER proj_timeline_task_started AFTER INSERT ON events
WHEN NEW.type = 'task.started'
BEGIN
    INSERT INTO timeline (session_id, kind, ref, label, started_at, child_session_id)
    VALUES (NEW.session_id,
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
    WHERE session_id = NEW.session_id AND kind IN ('task', 'subagent')
      AND ref = json_extract(NEW.data, '$.task_id') AND finished_at IS NULL;
END;

-- A fork does not inherit the running tasks and subagents of its source (tasks.sql).
CREATE TRIGGER proj_timeline_forked AFTER INSERT ON events
WHEN NEW.type = 'session.forked'
BEGIN
    UPDATE timeline SET finished_at = NEW.ts, status = 'cancelled',
        duration_ms = CAST(round((julianday(NEW.ts) - julianday(started_at)) * 86400000) AS INTEGER)
    WHERE session_id = NEW.session_id AND kind IN ('task', 'subagent') AND finished_at IS NULL;
END;
