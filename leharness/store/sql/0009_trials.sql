-- Trials of a Harbor job (or several), read from each trial's result.json by
-- `lh merge`. Like `events`, these hold facts from outside the event log, so
-- a projection rebuild never touches them.
CREATE TABLE IF NOT EXISTS trials (
    trial_id TEXT PRIMARY KEY,          -- Harbor's TrialResult.id
    job TEXT,                           -- the job folder's name
    trial TEXT NOT NULL,                -- trial_name, e.g. make-file__AbC123
    task TEXT,
    source TEXT,                        -- the dataset the task came from
    agent TEXT,
    model TEXT,
    reward REAL,                        -- rewards.reward, or the only reward
    rewards TEXT CHECK (rewards IS NULL OR json_valid(rewards)),
    exception_type TEXT,
    exception_message TEXT,
    started_at TEXT,
    finished_at TEXT,
    duration_s REAL,
    agent_duration_s REAL,
    verifier_duration_s REAL,
    input_tokens INTEGER,
    output_tokens INTEGER,
    cost_usd REAL,
    path TEXT,                          -- the trial's folder when it was merged
    result TEXT NOT NULL CHECK (json_valid(result))  -- the whole result.json
);

CREATE INDEX IF NOT EXISTS trials_job ON trials (job);
CREATE INDEX IF NOT EXISTS trials_task ON trials (task);

-- Which trial each merged session came from (subagents' sessions included).
CREATE TABLE IF NOT EXISTS trial_sessions (
    session_id TEXT PRIMARY KEY,
    trial_id TEXT NOT NULL
);

CREATE INDEX IF NOT EXISTS trial_sessions_trial ON trial_sessions (trial_id);
