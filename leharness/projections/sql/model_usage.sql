-- model_usage: model calls and tokens per session and model, summed by an
-- upsert on every model.completed (the token_usage view reads it).
CREATE TABLE model_usage (
    session_id TEXT NOT NULL,
    model TEXT NOT NULL,                 -- '?' when the reply named no model
    model_calls INTEGER NOT NULL DEFAULT 0,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (session_id, model)
) WITHOUT ROWID;

CREATE TRIGGER proj_model_usage AFTER INSERT ON events
WHEN NEW.type = 'model.completed'
BEGIN
    INSERT INTO model_usage (session_id, model, model_calls, prompt_tokens, completion_tokens)
    VALUES (NEW.session_id, coalesce(json_extract(NEW.data, '$.model'), '?'), 1,
            coalesce(json_extract(NEW.data, '$.usage.prompt_tokens'), 0),
            coalesce(json_extract(NEW.data, '$.usage.completion_tokens'), 0))
    ON CONFLICT (session_id, model) DO UPDATE SET
        model_calls = model_calls + 1,
        prompt_tokens = prompt_tokens + excluded.prompt_tokens,
        completion_tokens = completion_tokens + excluded.completion_tokens;
END;
