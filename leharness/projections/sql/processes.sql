-- processes: every command lh started (process.started), keyed by the task id it
-- would take as a background task, with what proves the pid is still that process
-- (boot id and start time). Crash recovery reads it to stop a foreground command
-- that a killed lh left running. A fork owns no process of its source: the rows
-- its copied events made are dropped when session.forked arrives.
CREATE TABLE processes (
    session_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    call_id TEXT,
    pid INTEGER NOT NULL,                -- leads the process group
    boot_id TEXT,
    start_time TEXT,
    owner_session_id TEXT,               -- the session that started it (copies keep it)
    timeout_s INTEGER,
    started_at TEXT NOT NULL,
    PRIMARY KEY (session_id, task_id)
) WITHOUT ROWID;

CREATE INDEX processes_call ON processes (session_id, call_id);

CREATE TRIGGER proj_processes_started AFTER INSERT ON events
WHEN NEW.type = 'process.started'
BEGIN
    INSERT OR IGNORE INTO processes (session_id, task_id, call_id, pid, boot_id, start_time,
                                     owner_session_id, timeout_s, started_at)
    VALUES (NEW.session_id, json_extract(NEW.data, '$.task_id'),
            json_extract(NEW.data, '$.call_id'), json_extract(NEW.data, '$.pid'),
            json_extract(NEW.data, '$.boot_id'), json_extract(NEW.data, '$.start_time'),
            json_extract(NEW.data, '$.owner_session_id'), json_extract(NEW.data, '$.timeout_s'),
            NEW.ts);
END;

CREATE TRIGGER proj_processes_forked AFTER INSERT ON events
WHEN NEW.type = 'session.forked'
BEGIN
    DELETE FROM processes WHERE session_id = NEW.session_id;
END;
