-- timeline: one row per step and per model call, with start, end, duration
-- and status. Tool calls, background tasks and subagents are not copied here:
-- the session_timeline view reads them from tool_calls and tasks, which hold
-- the same lifecycles already (copying them cost every append a page). The
-- event that starts a step opens its two rows, the one that ends it closes
-- them, each by primary key: `ref` is the step's session_seq as an INTEGER
-- (the column has no type affinity, so integers stay integers), the model
-- call's the same, so a step's two rows sit side by side at the end of the
-- session's rows and the latest step is a max() over the key. One b-tree and
-- no secondary index: it adds as little as it can to each append.
CREATE TABLE timeline (
    session_id TEXT NOT NULL,
    ref NOT NULL,                        -- the step's session_seq
    kind TEXT NOT NULL,                  -- step | model
    label TEXT,                          -- step N, or the model's name
    started_at TEXT NOT NULL,
    finished_at TEXT,
    duration_ms INTEGER,
    status TEXT NOT NULL DEFAULT 'running',  -- running | completed | failed | cancelled | interrupted
    child_session_id TEXT,               -- always NULL here (subagents: session_timeline)
    PRIMARY KEY (session_id, ref, kind)
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
             WHERE m.session_id = timeline.session_id AND m.ref = timeline.ref AND m.kind = 'model'),
            'completed') END
    WHERE session_id = NEW.session_id AND kind IN ('step', 'model') AND finished_at IS NULL
      AND ref = (SELECT max(ref) FROM timeline WHERE session_id = NEW.session_id);
    INSERT INTO timeline (session_id, ref, kind, label, started_at)
    VALUES (NEW.session_id, NEW.session_seq, 'step',
            'step ' || coalesce(json_extract(NEW.data, '$.step'), '?'), NEW.ts),
           (NEW.session_id, NEW.session_seq, 'model',
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
             WHERE m.session_id = timeline.session_id AND m.ref = timeline.ref AND m.kind = 'model'),
            'completed') END
    WHERE session_id = NEW.session_id AND kind IN ('step', 'model') AND finished_at IS NULL
      AND ref = (SELECT max(ref) FROM timeline WHERE session_id = NEW.session_id);
END;

CREATE TRIGGER proj_timeline_model AFTER INSERT ON events
WHEN NEW.type IN ('model.completed', 'model.failed', 'model.cancelled')
BEGIN
    UPDATE timeline SET finished_at = NEW.ts, status = substr(NEW.type, 7),
        duration_ms = CAST(round((julianday(NEW.ts) - julianday(started_at)) * 86400000) AS INTEGER)
    WHERE session_id = NEW.session_id AND kind = 'model' AND finished_at IS NULL
      AND ref = (SELECT max(ref) FROM timeline WHERE session_id = NEW.session_id);
END;
