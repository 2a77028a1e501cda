-- tasks: background work with a durable handle (bash processes, subagents).
-- `delivered` = 1 once a task.delivered event showed the result to the model;
-- a finished task with delivered = 0 is a pending notification.
-- A fork does not inherit running tasks: they keep running in the source, so
-- session.forked closes the copies (cancel_reason 'forked') and marks every
-- copied row with the session that really ran it (forked_from).
CREATE TABLE tasks (
    session_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    kind TEXT NOT NULL,                  -- bash | agent
    status TEXT NOT NULL DEFAULT 'running',  -- running | completed | failed | cancelled
    call_id TEXT,
    command TEXT,
    prompt TEXT,
    child_session_id TEXT,
    pid INTEGER,
    harness_pid INTEGER,                 -- the lh process that runs it
    boot_id TEXT,                        -- with start_time: proves pid is still the task's
    start_time TEXT,
    owner_session_id TEXT,               -- the session whose runtime started it
    forked_from TEXT,                    -- copied by a fork: the session that ran it
    started_at TEXT NOT NULL,
    finished_at TEXT,
    exit_code INTEGER,
    summary TEXT,
    output TEXT,
    cancel_reason TEXT,
    artifact_id TEXT,
    delivered INTEGER NOT NULL DEFAULT 0,
    delivered_seq INTEGER,
    finished_seq INTEGER,                -- session_seq of the ending event: notifications go out in this order
    PRIMARY KEY (session_id, task_id)
) WITHOUT ROWID;

CREATE INDEX tasks_pending ON tasks (session_id) WHERE delivered = 0;
CREATE INDEX tasks_running ON tasks (session_id) WHERE status = 'running';

CREATE TRIGGER proj_tasks_started AFTER INSERT ON events
WHEN NEW.type = 'task.started'
BEGIN
    INSERT INTO tasks (session_id, task_id, kind, call_id, command, prompt, child_session_id,
                       pid, harness_pid, boot_id, start_time, owner_session_id, started_at,
                       artifact_id)
    VALUES (NEW.session_id, json_extract(NEW.data, '$.task_id'), json_extract(NEW.data, '$.kind'),
            json_extract(NEW.data, '$.call_id'), json_extract(NEW.data, '$.command'),
            json_extract(NEW.data, '$.prompt'), json_extract(NEW.data, '$.child_session_id'),
            json_extract(NEW.data, '$.pid'), json_extract(NEW.data, '$.harness_pid'),
            json_extract(NEW.data, '$.boot_id'), json_extract(NEW.data, '$.start_time'),
            json_extract(NEW.data, '$.owner_session_id'), NEW.ts,
            json_extract(NEW.data, '$.artifact_id'));
END;

CREATE TRIGGER proj_tasks_finished AFTER INSERT ON events
WHEN NEW.type IN ('task.completed', 'task.failed', 'task.cancelled')
BEGIN
    UPDATE tasks SET
        status = substr(NEW.type, 6),
        finished_at = NEW.ts,
        finished_seq = NEW.session_seq,
        exit_code = json_extract(NEW.data, '$.exit_code'),
        summary = CASE NEW.type
            WHEN 'task.completed' THEN json_extract(NEW.data, '$.summary')
            WHEN 'task.failed' THEN json_extract(NEW.data, '$.error')
            ELSE 'cancelled: ' || json_extract(NEW.data, '$.reason') END,
        output = json_extract(NEW.data, '$.output'),
        cancel_reason = json_extract(NEW.data, '$.reason'),
        artifact_id = coalesce(json_extract(NEW.data, '$.artifact_id'), artifact_id)
    WHERE session_id = NEW.session_id AND task_id = json_extract(NEW.data, '$.task_id')
      AND status = 'running';
END;

CREATE TRIGGER proj_tasks_delivered AFTER INSERT ON events
WHEN NEW.type = 'task.delivered'
BEGIN
    UPDATE tasks SET delivered = 1, delivered_seq = NEW.session_seq
    WHERE session_id = NEW.session_id
      AND task_id IN (SELECT value FROM json_each(NEW.data, '$.task_ids'));
END;

CREATE TRIGGER proj_tasks_forked AFTER INSERT ON events
WHEN NEW.type = 'session.forked'
BEGIN
    UPDATE tasks SET status = 'cancelled', finished_at = NEW.ts, finished_seq = NEW.session_seq,
        cancel_reason = 'forked',
        summary = 'cancelled: it goes on in session '
            || json_extract(NEW.data, '$.source_session_id')
            || ', which started it; a fork does not inherit running tasks'
    WHERE session_id = NEW.session_id AND status = 'running';
    UPDATE tasks SET forked_from = json_extract(NEW.data, '$.source_session_id')
    WHERE session_id = NEW.session_id;
END;
