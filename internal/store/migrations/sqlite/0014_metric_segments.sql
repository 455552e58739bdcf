-- Metric points in segments: the points one write logs for one (run, key)
-- are one row, encoded in binary in a blob (see
-- internal/tracking/segments.go). A 500-point log-batch of 50 keys is then
-- 50 inserts rather than 500 B-tree inserts of 70-byte rows, which were
-- most of the writer's time. The primary key reads a history in the order
-- of its segments' first steps, so get-history merges them as it streams.
-- Rows of the metrics table written before this migration are moved into
-- segments when the server starts (tracking.New).
CREATE TABLE metric_segments (
    run_uuid   TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    first_step INTEGER NOT NULL,
    id         INTEGER NOT NULL,
    last_step  INTEGER NOT NULL,
    points     INTEGER NOT NULL,
    data       BLOB    NOT NULL,
    PRIMARY KEY (run_uuid, key, first_step, id)
) WITHOUT ROWID;
