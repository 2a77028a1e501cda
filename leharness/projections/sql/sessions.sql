-- sessions: one row per session, kept current by triggers on events.
-- title is the first prompt; status follows invocations and agent.finished.
-- No index on updated_at: every append would rewrite its entry; ordering the
-- sessions by it reads this small table instead.
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    parent_session_id TEXT,
    parent_task_id TEXT,
    agent_type TEXT,
    forked_from TEXT,
    forked_at INTEGER,
    title TEXT,
    cwd TEXT,
    provider TEXT,
    model TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'new',   -- new | running | idle | failed | cancelled
    finish_reason TEXT,
    event_count INTEGER NOT NULL DEFAULT 0,
    steps INTEGER NOT NULL DEFAULT 0,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    last_prompt_tokens INTEGER,
    last_model_seq INTEGER,               -- the model.completed that reported last_prompt_tokens
    compacted_seq INTEGER                 -- the last compaction that changed the visible messages
);

CREATE INDEX sessions_parent ON sessions (parent_session_id);

CREATE TRIGGER proj_sessions_created AFTER INSERT ON events
WHEN NEW.type = 'session.created'
BEGIN
    INSERT INTO sessions (id, parent_session_id, parent_task_id, agent_type, cwd, provider,
                          model, created_at, updated_at, event_count)
    VALUES (NEW.session_id, json_extract(NEW.data, '$.parent_session_id'),
            json_extract(NEW.data, '$.parent_task_id'), json_extract(NEW.data, '$.agent_type'),
            json_extract(NEW.data, '$.cwd'), json_extract(NEW.data, '$.provider'),
            json_extract(NEW.data, '$.model'), NEW.ts, NEW.ts, NEW.session_seq);
END;

-- Every other event touches the counters. Each trigger is self-contained:
-- SQLite promises no order among triggers on one insert.
CREATE TRIGGER proj_sessions_touch AFTER INSERT ON events
WHEN NEW.type != 'session.created'
BEGIN
    UPDATE sessions SET updated_at = NEW.ts, event_count = NEW.session_seq
    WHERE id = NEW.session_id;
END;

CREATE TRIGGER proj_sessions_forked AFTER INSERT ON events
WHEN NEW.type = 'session.forked'
BEGIN
    UPDATE sessions SET forked_from = json_extract(NEW.data, '$.source_session_id'),
                        forked_at = json_extract(NEW.data, '$.at_session_seq')
    WHERE id = NEW.session_id;
END;

CREATE TRIGGER proj_sessions_invocation AFTER INSERT ON events
WHEN NEW.type IN ('invocation.received', 'invocation.auto')
BEGIN
    UPDATE sessions SET status = 'running', finish_reason = NULL,
        title = coalesce(title, substr(json_extract(NEW.data, '$.text'), 1, 200))
    WHERE id = NEW.session_id;
END;

CREATE TRIGGER proj_sessions_step AFTER INSERT ON events
WHEN NEW.type = 'step.started'
BEGIN
    UPDATE sessions SET steps = steps + 1,
        provider = coalesce(json_extract(NEW.data, '$.provider'), provider),
        model = coalesce(json_extract(NEW.data, '$.model'), model)
    WHERE id = NEW.session_id;
END;

CREATE TRIGGER proj_sessions_usage AFTER INSERT ON events
WHEN NEW.type = 'model.completed'
BEGIN
    UPDATE sessions SET
        prompt_tokens = prompt_tokens + coalesce(json_extract(NEW.data, '$.usage.prompt_tokens'), 0),
        completion_tokens = completion_tokens
            + coalesce(json_extract(NEW.data, '$.usage.completion_tokens'), 0),
        last_prompt_tokens = json_extract(NEW.data, '$.usage.prompt_tokens'),
        last_model_seq = NEW.session_seq
    WHERE id = NEW.session_id;
END;

-- After a compaction the last call's prompt tokens no longer measure the
-- visible conversation: the loop then estimates them until the next call.
CREATE TRIGGER proj_sessions_compacted AFTER INSERT ON events
WHEN NEW.type IN ('compaction.completed', 'compaction.summary')
BEGIN
    UPDATE sessions SET compacted_seq = NEW.session_seq WHERE id = NEW.session_id;
END;

CREATE TRIGGER proj_sessions_finished AFTER INSERT ON events
WHEN NEW.type = 'agent.finished'
BEGIN
    UPDATE sessions SET finish_reason = json_extract(NEW.data, '$.reason'),
        status = CASE json_extract(NEW.data, '$.reason')
            WHEN 'model_failed' THEN 'failed'
            WHEN 'cancelled' THEN 'cancelled'
            ELSE 'idle' END
    WHERE id = NEW.session_id;
END;
