-- messages: the prompt-ready conversation of each session, one row per
-- message-producing event, keyed by that event's session_seq. `visible` is
-- what the loop sends to the model; compaction events clear it, never delete.
CREATE TABLE messages (
    session_id TEXT NOT NULL,
    session_seq INTEGER NOT NULL,
    role TEXT NOT NULL,                  -- user | assistant | tool
    kind TEXT NOT NULL,                  -- prompt | answer | cancelled | tool_result | tool_error | notification
    content TEXT NOT NULL DEFAULT '',
    reasoning TEXT,
    tool_calls TEXT,                     -- JSON list of {id, name, arguments} or NULL
    tool_call_id TEXT,
    name TEXT,                           -- tool name for tool results
    ts TEXT NOT NULL,
    visible INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (session_id, session_seq)
) WITHOUT ROWID;

-- `visible` is in the index too so that counting the visible messages (the
-- transcript view's row count) never reads the table.
CREATE INDEX messages_visible ON messages (session_id, session_seq, visible) WHERE visible = 1;

CREATE TRIGGER proj_messages_prompt AFTER INSERT ON events
WHEN NEW.type = 'invocation.received'
BEGIN
    INSERT INTO messages (session_id, session_seq, role, kind, content, ts)
    VALUES (NEW.session_id, NEW.session_seq, 'user', 'prompt',
            json_extract(NEW.data, '$.text'), NEW.ts);
END;

CREATE TRIGGER proj_messages_answer AFTER INSERT ON events
WHEN NEW.type IN ('model.completed', 'model.cancelled')
BEGIN
    INSERT INTO messages (session_id, session_seq, role, kind, content, reasoning, tool_calls, ts)
    VALUES (NEW.session_id, NEW.session_seq, 'assistant',
            CASE NEW.type WHEN 'model.completed' THEN 'answer' ELSE 'cancelled' END,
            coalesce(json_extract(NEW.data, '$.text'), ''),
            nullif(json_extract(NEW.data, '$.reasoning'), ''),
            CASE WHEN json_array_length(NEW.data, '$.tool_calls') > 0
                 THEN json_extract(NEW.data, '$.tool_calls') END,
            NEW.ts);
END;

CREATE TRIGGER proj_messages_tool_completed AFTER INSERT ON events
WHEN NEW.type = 'tool.completed'
BEGIN
    INSERT INTO messages (session_id, session_seq, role, kind, content, tool_call_id, name, ts)
    VALUES (NEW.session_id, NEW.session_seq, 'tool', 'tool_result',
            json_extract(NEW.data, '$.result'), json_extract(NEW.data, '$.call_id'),
            json_extract(NEW.data, '$.name'), NEW.ts);
END;

CREATE TRIGGER proj_messages_tool_failed AFTER INSERT ON events
WHEN NEW.type = 'tool.failed'
BEGIN
    INSERT INTO messages (session_id, session_seq, role, kind, content, tool_call_id, name, ts)
    VALUES (NEW.session_id, NEW.session_seq, 'tool', 'tool_error',
            'Error: ' || json_extract(NEW.data, '$.error'), json_extract(NEW.data, '$.call_id'),
            json_extract(NEW.data, '$.name'), NEW.ts);
END;

-- A delivery with empty text (the model already saw the result, e.g. through
-- wait_task) marks the task delivered without adding a message.
CREATE TRIGGER proj_messages_notification AFTER INSERT ON events
WHEN NEW.type = 'task.delivered' AND json_extract(NEW.data, '$.text') != ''
BEGIN
    INSERT INTO messages (session_id, session_seq, role, kind, content, ts)
    VALUES (NEW.session_id, NEW.session_seq, 'user', 'notification',
            json_extract(NEW.data, '$.text'), NEW.ts);
END;

-- A compaction that drops the oldest messages (details.hide_through_seq) hides
-- them from the prompt; the rows and their events stay.
CREATE TRIGGER proj_messages_hide AFTER INSERT ON events
WHEN NEW.type = 'compaction.completed'
     AND json_extract(NEW.data, '$.details.hide_through_seq') IS NOT NULL
BEGIN
    UPDATE messages SET visible = 0
    WHERE session_id = NEW.session_id AND visible = 1
      AND session_seq <= json_extract(NEW.data, '$.details.hide_through_seq');
END;
