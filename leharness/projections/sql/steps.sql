-- steps: one row per turn of the loop (step.started), with the model call it
-- made. The model call ends at its model.completed / failed / cancelled; the
-- step ends when the next step starts or the invocation finishes.
CREATE TABLE steps (
    session_id TEXT NOT NULL,
    session_seq INTEGER NOT NULL,        -- of the step.started event
    step INTEGER,                        -- 1.. within its invocation
    provider TEXT,
    model TEXT,
    started_at TEXT NOT NULL,
    model_finished_at TEXT,
    model_status TEXT NOT NULL DEFAULT 'running',  -- running | completed | failed | cancelled | interrupted
    finished_at TEXT,
    PRIMARY KEY (session_id, session_seq)
) WITHOUT ROWID;

-- The one step still waiting for its model reply, and the one not yet ended:
-- each trigger below finds its row through these, whatever the history length.
CREATE INDEX steps_model_open ON steps (session_id) WHERE model_status = 'running';
CREATE INDEX steps_open ON steps (session_id) WHERE finished_at IS NULL;

CREATE TRIGGER proj_steps_started AFTER INSERT ON events
WHEN NEW.type = 'step.started'
BEGIN
    UPDATE steps SET model_status = 'interrupted'
    WHERE session_id = NEW.session_id AND model_status = 'running';
    UPDATE steps SET finished_at = NEW.ts
    WHERE session_id = NEW.session_id AND finished_at IS NULL;
    INSERT INTO steps (session_id, session_seq, step, provider, model, started_at)
    VALUES (NEW.session_id, NEW.session_seq, json_extract(NEW.data, '$.step'),
            json_extract(NEW.data, '$.provider'), json_extract(NEW.data, '$.model'), NEW.ts);
END;

CREATE TRIGGER proj_steps_model AFTER INSERT ON events
WHEN NEW.type IN ('model.completed', 'model.failed', 'model.cancelled')
BEGIN
    UPDATE steps SET model_finished_at = NEW.ts, model_status = substr(NEW.type, 7)
    WHERE session_id = NEW.session_id AND model_status = 'running';
END;

-- A new invocation or the end of one closes the step left open. After a
-- crash, the dead run's step ends when the session is resumed and a model
-- call that never answered is 'interrupted'.
CREATE TRIGGER proj_steps_finished AFTER INSERT ON events
WHEN NEW.type IN ('agent.finished', 'invocation.received', 'invocation.auto')
BEGIN
    UPDATE steps SET model_status = 'interrupted'
    WHERE session_id = NEW.session_id AND model_status = 'running';
    UPDATE steps SET finished_at = NEW.ts
    WHERE session_id = NEW.session_id AND finished_at IS NULL;
END;
