-- The prediction log in segments: each write group's predictions for one
-- deployment are one row, encoded in binary in a blob (see
-- internal/serving/segment.go), so logging costs one insert per group
-- rather than a B-tree insert per prediction, and a window is read by
-- its segments' time bounds. Rows of the predictions table written before
-- this migration stay readable until the retention period removes them.
CREATE TABLE prediction_segments (
    id          INTEGER PRIMARY KEY,
    deployment  TEXT    NOT NULL,
    min_time_ms INTEGER NOT NULL,
    max_time_ms INTEGER NOT NULL,
    count       INTEGER NOT NULL,
    data        BLOB    NOT NULL
);
CREATE INDEX prediction_segments_window ON prediction_segments(deployment, max_time_ms);
