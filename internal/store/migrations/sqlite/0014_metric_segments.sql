-- Metric points in binary (see internal/tracking/segments.go), instead of
-- a B-tree insert of a 70-byte row per point, which was most of a
-- log-batch's cost.
--
-- Each write's points for a run are one row of metric_batches, all keys in
-- one blob, appended in id order: a 500-point log-batch of 50 keys dirties
-- a page or two, where a row per key would dirty a page per key. When a
-- run's batches hold enough points, the write that crosses the mark
-- compacts them into metric_segments: a row per key and stretch of steps,
-- whose primary key reads a history in the order of its segments' first
-- steps, so get-history merges them as it streams.
--
-- Rows of the metrics table written before this migration are moved into
-- segments when the server starts (tracking.New).
CREATE TABLE metric_batches (
    id       INTEGER PRIMARY KEY,
    run_uuid TEXT    NOT NULL,
    points   INTEGER NOT NULL,
    data     BLOB    NOT NULL
);
CREATE INDEX metric_batches_by_run ON metric_batches(run_uuid);

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
