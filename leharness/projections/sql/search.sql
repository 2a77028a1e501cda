-- conversation + conversation_fts: the searchable text of every session, one
-- row per event that carries conversation (prompts, answers with their tool
-- calls' names and arguments, tool results and errors, task notifications).
-- Laid out the way sqlite-utils' `enable-fts` does it: an FTS5 table named
-- `<table>_fts` with external content (`content=[conversation]`) joined on
-- rowid, so `sqlite-utils search sessions.db conversation QUERY` and
-- Datasette's search box on `conversation` work as they do on any table.
-- `seq` (the rowid) is the event's own global seq: a rebuild, which replays
-- events with their seq, reproduces it. Rows are never updated or deleted:
-- compaction changes what the model sees, never what was said. No index on
-- session_id: a search narrowed to one session starts from the FTS index and
-- reads each hit's row by seq, and an index would cost every append a page.
CREATE TABLE conversation (
    seq INTEGER PRIMARY KEY,             -- the event's seq; rowid of conversation_fts
    session_id TEXT NOT NULL,
    session_seq INTEGER NOT NULL,
    role TEXT NOT NULL,                  -- user | assistant | tool
    kind TEXT NOT NULL,                  -- prompt | answer | tool_result | tool_error | notification
    tool TEXT,                           -- tool name(s), comma-separated for an answer's calls
    text TEXT NOT NULL,
    ts TEXT NOT NULL
);

CREATE VIRTUAL TABLE conversation_fts USING fts5 (text, content=[conversation]);

-- Each trigger inserts the row, then indexes that same row: two statements of
-- one trigger, so no trigger depends on another having run.
CREATE TRIGGER proj_search_prompt AFTER INSERT ON events
WHEN NEW.type = 'invocation.received' AND json_extract(NEW.data, '$.text') != ''
BEGIN
    INSERT INTO conversation (seq, session_id, session_seq, role, kind, text, ts)
    VALUES (NEW.seq, NEW.session_id, NEW.session_seq, 'user', 'prompt',
            json_extract(NEW.data, '$.text'), NEW.ts);
    INSERT INTO conversation_fts (rowid, text) SELECT seq, text FROM conversation WHERE seq = NEW.seq;
END;

CREATE TRIGGER proj_search_answer AFTER INSERT ON events
WHEN NEW.type = 'model.completed'
     AND (coalesce(json_extract(NEW.data, '$.text'), '') != ''
          OR json_array_length(NEW.data, '$.tool_calls') > 0)
BEGIN
    INSERT INTO conversation (seq, session_id, session_seq, role, kind, tool, text, ts)
    VALUES (NEW.seq, NEW.session_id, NEW.session_seq, 'assistant', 'answer',
            (SELECT group_concat(json_extract(value, '$.name'), ',')
             FROM json_each(NEW.data, '$.tool_calls')),
            trim(coalesce(json_extract(NEW.data, '$.text'), '') || char(10) ||
                 coalesce((SELECT group_concat(json_extract(value, '$.name') || ' ' ||
                                               coalesce(json_extract(value, '$.arguments'), ''),
                                               char(10))
                           FROM json_each(NEW.data, '$.tool_calls')), ''),
                 char(10)),
            NEW.ts);
    INSERT INTO conversation_fts (rowid, text) SELECT seq, text FROM conversation WHERE seq = NEW.seq;
END;

CREATE TRIGGER proj_search_tool AFTER INSERT ON events
WHEN NEW.type IN ('tool.completed', 'tool.failed')
BEGIN
    INSERT INTO conversation (seq, session_id, session_seq, role, kind, tool, text, ts)
    VALUES (NEW.seq, NEW.session_id, NEW.session_seq, 'tool',
            CASE NEW.type WHEN 'tool.completed' THEN 'tool_result' ELSE 'tool_error' END,
            json_extract(NEW.data, '$.name'),
            coalesce(json_extract(NEW.data, '$.result'), json_extract(NEW.data, '$.error'), ''),
            NEW.ts);
    INSERT INTO conversation_fts (rowid, text) SELECT seq, text FROM conversation WHERE seq = NEW.seq;
END;

CREATE TRIGGER proj_search_notification AFTER INSERT ON events
WHEN NEW.type = 'task.delivered' AND json_extract(NEW.data, '$.text') != ''
BEGIN
    INSERT INTO conversation (seq, session_id, session_seq, role, kind, text, ts)
    VALUES (NEW.seq, NEW.session_id, NEW.session_seq, 'user', 'notification',
            json_extract(NEW.data, '$.text'), NEW.ts);
    INSERT INTO conversation_fts (rowid, text) SELECT seq, text FROM conversation WHERE seq = NEW.seq;
END;
