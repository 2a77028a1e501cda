-- What leharness installed beside the events, so it can check and undo its own
-- work and nothing else: `projections_sha256` (the projection SQL last installed;
-- a different hash reinstalls and rebuilds them) and `projection_objects` (the
-- tables, views, triggers and indexes that SQL created, as JSON). Other tools'
-- tables, triggers and FTS indexes in this file are never touched.
CREATE TABLE IF NOT EXISTS lh_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
