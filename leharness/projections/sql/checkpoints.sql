-- checkpoints: every change lh made to workspace files, one row per
-- checkpoint.file (write_file, edit_file: content hashes before and after) or
-- checkpoint.tree (bash in a git work tree: snapshot tree ids before and
-- after). `lh diff` and `lh rewind` read it; the inspector shows it.
CREATE TABLE checkpoints (
    session_id TEXT NOT NULL,
    session_seq INTEGER NOT NULL,
    kind TEXT NOT NULL,                  -- file | tree
    path TEXT NOT NULL,                  -- the file, or the work tree's top
    before TEXT,                         -- sha256 (NULL: no file) or tree id
    after TEXT NOT NULL,                 -- sha256 or tree id
    git_dir TEXT,                        -- tree: the snapshot repository
    call_id TEXT,
    tool TEXT,
    ts TEXT NOT NULL,
    PRIMARY KEY (session_id, session_seq)
) WITHOUT ROWID;

CREATE TRIGGER proj_checkpoints_file AFTER INSERT ON events
WHEN NEW.type = 'checkpoint.file'
BEGIN
    INSERT INTO checkpoints (session_id, session_seq, kind, path, before, after, call_id, tool, ts)
    VALUES (NEW.session_id, NEW.session_seq, 'file', json_extract(NEW.data, '$.path'),
            json_extract(NEW.data, '$.before_sha256'), json_extract(NEW.data, '$.after_sha256'),
            json_extract(NEW.data, '$.call_id'), json_extract(NEW.data, '$.tool'), NEW.ts);
END;

CREATE TRIGGER proj_checkpoints_tree AFTER INSERT ON events
WHEN NEW.type = 'checkpoint.tree'
BEGIN
    INSERT INTO checkpoints (session_id, session_seq, kind, path, before, after, git_dir,
                             call_id, tool, ts)
    VALUES (NEW.session_id, NEW.session_seq, 'tree', json_extract(NEW.data, '$.worktree'),
            json_extract(NEW.data, '$.before_tree'), json_extract(NEW.data, '$.after_tree'),
            json_extract(NEW.data, '$.git_dir'), json_extract(NEW.data, '$.call_id'),
            json_extract(NEW.data, '$.tool'), NEW.ts);
END;
