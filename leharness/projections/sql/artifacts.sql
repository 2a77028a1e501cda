-- artifacts: large outputs kept on disk; the row records where, how big and
-- their sha256, and which tool call or task produced them.
CREATE TABLE artifacts (
    session_id TEXT NOT NULL,
    artifact_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    path TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    call_id TEXT,
    task_id TEXT,
    created_at TEXT NOT NULL,
    PRIMARY KEY (session_id, artifact_id)
) WITHOUT ROWID;

CREATE TRIGGER proj_artifacts_created AFTER INSERT ON events
WHEN NEW.type = 'artifact.created'
BEGIN
    INSERT INTO artifacts (session_id, artifact_id, kind, path, bytes, sha256, call_id, task_id,
                           created_at)
    VALUES (NEW.session_id, json_extract(NEW.data, '$.artifact_id'),
            json_extract(NEW.data, '$.kind'), json_extract(NEW.data, '$.path'),
            json_extract(NEW.data, '$.bytes'), json_extract(NEW.data, '$.sha256'),
            json_extract(NEW.data, '$.call_id'), json_extract(NEW.data, '$.task_id'), NEW.ts);
END;
