-- Saved queries as SQL views, so they work in Datasette, `lh sql` and any
-- SQLite tool: transcript, session_timeline, tool_failures, task_durations,
-- token_usage. Each reads projection tables only, so its first page and its
-- row count stay fast on a million events.
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
FROM messages INDEXED BY messages_visible  -- the loop reads each step through it (invariant 7)
WHERE visible = 1;

-- One row per step, model call, tool call, background task and subagent, with
-- start, end and duration in milliseconds. `ref` is the step's session_seq,
-- the call_id or the task_id. Steps and model calls come from timeline, tool
-- calls from tool_calls (a call starts when it is requested, again when it
-- runs), tasks and subagents from tasks; a filter on session_id reaches each
-- table's primary key.
CREATE VIEW session_timeline AS
SELECT session_id, kind, label, started_at, finished_at, duration_ms, status, ref,
       child_session_id
FROM timeline
UNION ALL
SELECT session_id, 'tool', name, coalesce(started_at, requested_at), finished_at,
       CAST(round((julianday(finished_at) - julianday(coalesce(started_at, requested_at)))
                  * 86400000) AS INTEGER),
       status, call_id, NULL
FROM tool_calls
UNION ALL
SELECT session_id, CASE kind WHEN 'agent' THEN 'subagent' ELSE 'task' END,
       coalesce(command, prompt, kind), started_at, finished_at,
       CAST(round((julianday(finished_at) - julianday(started_at)) * 86400000) AS INTEGER),
       status, task_id, child_session_id
FROM tasks;

-- `+name`: grouping by name (Datasette's facet) must not walk tool_calls_name
-- over every call; the few failures come from tool_calls_failed.
CREATE VIEW tool_failures AS
SELECT session_id, call_id, +name AS name, arguments, error_kind, error, finished_at
FROM tool_calls
WHERE status = 'failed';

CREATE VIEW task_durations AS
SELECT session_id, task_id, kind, status, started_at, finished_at,
       CAST(round((julianday(finished_at) - julianday(started_at)) * 86400000) AS INTEGER)
           AS duration_ms,
       exit_code, coalesce(command, prompt) AS what, child_session_id
FROM tasks;

-- Model calls and tokens per session and model.
CREATE VIEW token_usage AS
SELECT session_id, model, model_calls, prompt_tokens, completion_tokens,
       prompt_tokens + completion_tokens AS total_tokens
FROM model_usage;

-- Fleets (lh merge of Harbor jobs): each top-level session beside the trial it came
-- from, its reward, steps, tokens and failed tool calls.
CREATE VIEW trial_runs AS
SELECT t.job, t.trial, t.task, t.agent, t.model, t.reward, t.exception_type,
       s.id AS session_id, s.status, s.finish_reason, s.steps,
       s.prompt_tokens, s.completion_tokens,
       (SELECT count(*) FROM tool_calls AS c
        WHERE c.session_id = s.id AND c.status = 'failed') AS tool_failures,
       t.duration_s, t.trial_id
FROM trials AS t
JOIN trial_sessions AS link ON link.trial_id = t.trial_id
JOIN sessions AS s ON s.id = link.session_id AND s.parent_session_id IS NULL;

-- Mean reward by how many tool calls failed in the trial's session.
CREATE VIEW reward_by_tool_failures AS
SELECT tool_failures, count(*) AS sessions, avg(reward) AS mean_reward
FROM trial_runs
GROUP BY tool_failures;

-- Per task: trials, mean reward, mean steps and tokens of lh's sessions.
CREATE VIEW task_usage AS
SELECT task, agent, count(*) AS sessions, avg(reward) AS mean_reward, avg(steps) AS mean_steps,
       avg(prompt_tokens + completion_tokens) AS mean_tokens
FROM trial_runs
GROUP BY task, agent;

-- The trials whose session stopped at --max-steps.
CREATE VIEW max_steps_trials AS
SELECT * FROM trial_runs WHERE finish_reason = 'max_steps';
