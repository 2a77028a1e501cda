-- messages: the prompt-ready conversation of each session, one row per
-- message-producing event, keyed by that event's session_seq. `visible` is
-- what the loop sends to the model; compaction events clear it, never delete.
-- Compaction never overwrites what happened either: `compacted` is what the
-- model sees instead of `content` (a T2 artifact stub, the T3 marker, or a
-- T4/T5 summary written into the first message of its window, whose other
-- messages are hidden), `compacted_by` the tier that set it.
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
    reasoning_dropped INTEGER NOT NULL DEFAULT 0,  -- T1: old reasoning left out of the view
    compacted TEXT,                      -- what the model sees instead of content (NULL: content)
    compacted_by TEXT,                   -- T2 | T3 | T6 | summary
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
-- them from the prompt; the rows and their events stay. details.hide_from_seq,
-- the first visible message then, bounds the range the update walks (without
-- it, every earlier row of a long session is visited again).
CREATE TRIGGER proj_messages_hide AFTER INSERT ON events
WHEN NEW.type = 'compaction.completed'
     AND json_extract(NEW.data, '$.details.hide_through_seq') IS NOT NULL
BEGIN
    UPDATE messages SET visible = 0
    WHERE session_id = NEW.session_id AND visible = 1
      AND session_seq BETWEEN coalesce(json_extract(NEW.data, '$.details.hide_from_seq'), 0)
                          AND json_extract(NEW.data, '$.details.hide_through_seq');
END;

-- The tier triggers below act on the range details.from_seq..through_seq and
-- never test `visible`: two triggers on one insert run in no promised order,
-- so none may depend on what another (proj_messages_hide) did.

-- T1: old reasoning leaves the visible conversation (the row keeps it).
CREATE TRIGGER proj_messages_drop_reasoning AFTER INSERT ON events
WHEN NEW.type = 'compaction.completed'
     AND json_extract(NEW.data, '$.details.drop_reasoning_through_seq') IS NOT NULL
BEGIN
    UPDATE messages SET reasoning_dropped = 1
    WHERE session_id = NEW.session_id AND reasoning IS NOT NULL
      AND session_seq BETWEEN coalesce(json_extract(NEW.data, '$.details.from_seq'), 0)
                          AND json_extract(NEW.data, '$.details.drop_reasoning_through_seq');
END;

-- T2: old tool results moved into artifacts; each becomes the stub naming its
-- artifact (details.moved = [{seq, artifact_id, stub}]).
CREATE TRIGGER proj_messages_move_results AFTER INSERT ON events
WHEN NEW.type = 'compaction.completed'
     AND json_array_length(NEW.data, '$.details.moved') > 0
BEGIN
    UPDATE messages SET
        compacted = (SELECT json_extract(moved.value, '$.stub')
                     FROM json_each(NEW.data, '$.details.moved') AS moved
                     WHERE json_extract(moved.value, '$.seq') = messages.session_seq),
        compacted_by = json_extract(NEW.data, '$.tier')
    WHERE session_id = NEW.session_id AND role = 'tool' AND compacted IS NULL
      AND session_seq IN (SELECT json_extract(moved.value, '$.seq')
                          FROM json_each(NEW.data, '$.details.moved') AS moved);
END;

-- T3 (and T6 as a last resort): the remaining old tool result bodies become a
-- marker; the rows stay, so every tool call keeps its one result.
CREATE TRIGGER proj_messages_drop_results AFTER INSERT ON events
WHEN NEW.type = 'compaction.completed'
     AND json_extract(NEW.data, '$.details.drop_results_through_seq') IS NOT NULL
BEGIN
    UPDATE messages SET compacted = '[tool result dropped during compaction]',
                        compacted_by = json_extract(NEW.data, '$.tier')
    WHERE session_id = NEW.session_id AND role = 'tool'
      AND compacted IS NULL AND length(content) > 40
      AND session_seq BETWEEN coalesce(json_extract(NEW.data, '$.details.from_seq'), 0)
                          AND json_extract(NEW.data, '$.details.drop_results_through_seq');
END;

-- T4/T5: a window's summary takes the place of the window's first message and
-- the window's other messages are hidden, so the summary sits in order.
CREATE TRIGGER proj_messages_summary AFTER INSERT ON events
WHEN NEW.type = 'compaction.summary'
BEGIN
    UPDATE messages SET
        compacted = coalesce(json_extract(NEW.data, '$.text'), json_extract(NEW.data, '$.summary')),
        compacted_by = 'summary'
    WHERE session_id = NEW.session_id AND session_seq = json_extract(NEW.data, '$.from_seq');
    UPDATE messages SET visible = 0
    WHERE session_id = NEW.session_id AND visible = 1
      AND session_seq > json_extract(NEW.data, '$.from_seq')
      AND session_seq <= json_extract(NEW.data, '$.to_seq');
END;
