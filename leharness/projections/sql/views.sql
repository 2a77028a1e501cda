-- Saved queries as SQL views, so they work in Datasette, `lh sql` and any
-- SQLite tool: transcript, session_timeline, tool_failures, task_durations,
-- token_usage.
-- transcript: the visible conversation as the model sees it, compaction applied
-- (a summary stands in for its window's first message).
CREATE VIEW transcript AS
SELECT session_id, session_seq, ts,
       CASE WHEN compacted_by = 'summary' THEN 'user' ELSE role END AS role,
       CASE WHEN compacted_by = 'summary' THEN 'summary' ELSE kind END AS kind,
       coalesce(compacted, content) AS content,
       CASE WHEN reasoning_dropped OR compacted_by = 'summary' THEN NULL ELSE reasoning END
           AS reasoning,
       CASE WHEN compacted_by = 'summary' THEN NULL ELSE tool_calls END AS tool_calls,
       CASE WHEN compacted_by = 'summary' THEN NULL ELSE tool_call_id END AS tool_call_id,
       name, compacted_by
FROM messages
WHERE visible = 1;

-- One row per model call, tool call, background task and subagent, with start,
-- end and duration in milliseconds.
CREATE VIEW session_timeline AS
SELECT session_id, kind, label, started_at, finished_at,
       CAST(round((julianday(finished_at) - julianday(started_at)) * 86400000) AS INTEGER)
           AS duration_ms,
       status, ref
FROM (
    SELECT step.session_id, 'model' AS kind,
           'step ' || json_extract(step.data, '$.step') AS label,
           step.ts AS started_at, reply.ts AS finished_at,
           coalesce(substr(reply.type, 7), 'running') AS status,
           step.session_seq AS ref
    FROM events AS step
    LEFT JOIN events AS reply
      ON reply.session_id = step.session_id
     AND reply.session_seq = (
        SELECT min(m.session_seq) FROM events AS m
        WHERE m.session_id = step.session_id AND m.session_seq > step.session_seq
          AND m.type IN ('model.completed', 'model.failed', 'model.cancelled'))
    WHERE step.type = 'step.started'
    UNION ALL
    SELECT session_id, 'tool', name, coalesce(started_at, requested_at), finished_at, status,
           call_id
    FROM tool_calls
    UNION ALL
    SELECT session_id, CASE kind WHEN 'agent' THEN 'subagent' ELSE 'task' END,
           coalesce(command, prompt, kind), started_at, finished_at, status, task_id
    FROM tasks
);

CREATE VIEW tool_failures AS
SELECT session_id, call_id, name, arguments, error_kind, error, finished_at
FROM tool_calls
WHERE status = 'failed';

CREATE VIEW task_durations AS
SELECT session_id, task_id, kind, status, started_at, finished_at,
       CAST(round((julianday(finished_at) - julianday(started_at)) * 86400000) AS INTEGER)
           AS duration_ms,
       exit_code, coalesce(command, prompt) AS what, child_session_id
FROM tasks;

CREATE VIEW token_usage AS
SELECT session_id, coalesce(json_extract(data, '$.model'), '?') AS model,
       count(*) AS model_calls,
       sum(coalesce(json_extract(data, '$.usage.prompt_tokens'), 0)) AS prompt_tokens,
       sum(coalesce(json_extract(data, '$.usage.completion_tokens'), 0)) AS completion_tokens
FROM events
WHERE type = 'model.completed'
GROUP BY session_id, model;
