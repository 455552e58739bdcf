-- The prediction log: every request a deployment answered (and every
-- shadow answer), for monitoring to read by deployment and time window,
-- and ground-truth labels sent later by request id. Rows are written in
-- groups by one writer off the request path and pruned after the
-- retention period.
CREATE TABLE predictions (
    id            INTEGER PRIMARY KEY,
    request_id    TEXT    NOT NULL,
    deployment    TEXT    NOT NULL,
    model_name    TEXT    NOT NULL,
    model_version INTEGER NOT NULL,
    shadow        INTEGER NOT NULL DEFAULT 0,
    time_ms       INTEGER NOT NULL,
    latency_us    INTEGER NOT NULL,
    rows          INTEGER NOT NULL,
    inputs        TEXT    NOT NULL,
    outputs       TEXT    NOT NULL
);
CREATE INDEX predictions_by_window ON predictions(deployment, time_ms);
CREATE INDEX predictions_by_request ON predictions(deployment, request_id);

CREATE TABLE prediction_feedback (
    deployment TEXT    NOT NULL,
    request_id TEXT    NOT NULL,
    label      TEXT    NOT NULL,
    time_ms    INTEGER NOT NULL,
    PRIMARY KEY (deployment, request_id)
);
