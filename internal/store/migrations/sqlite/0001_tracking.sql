-- Tracking: experiments, runs and what runs log. Column names follow MLflow's
-- SQL store so that anyone who knows that schema can read this one.
CREATE TABLE experiments (
    experiment_id     INTEGER PRIMARY KEY,
    name              TEXT    NOT NULL UNIQUE,
    artifact_location TEXT    NOT NULL,
    lifecycle_stage   TEXT    NOT NULL DEFAULT 'active',
    creation_time     INTEGER NOT NULL,
    last_update_time  INTEGER NOT NULL
);

CREATE TABLE experiment_tags (
    experiment_id INTEGER NOT NULL REFERENCES experiments(experiment_id) ON DELETE CASCADE,
    key           TEXT    NOT NULL,
    value         TEXT    NOT NULL,
    PRIMARY KEY (experiment_id, key)
);

CREATE TABLE runs (
    run_uuid        TEXT    PRIMARY KEY,
    experiment_id   INTEGER NOT NULL REFERENCES experiments(experiment_id),
    name            TEXT    NOT NULL DEFAULT '',
    user_id         TEXT    NOT NULL DEFAULT '',
    status          TEXT    NOT NULL,
    start_time      INTEGER NOT NULL,
    end_time        INTEGER,
    lifecycle_stage TEXT    NOT NULL DEFAULT 'active',
    artifact_uri    TEXT    NOT NULL,
    deleted_time    INTEGER
);
CREATE INDEX runs_by_experiment ON runs(experiment_id, start_time DESC, run_uuid);

CREATE TABLE params (
    run_uuid TEXT NOT NULL REFERENCES runs(run_uuid) ON DELETE CASCADE,
    key      TEXT NOT NULL,
    value    TEXT NOT NULL,
    PRIMARY KEY (run_uuid, key)
) WITHOUT ROWID;

CREATE TABLE tags (
    run_uuid TEXT NOT NULL REFERENCES runs(run_uuid) ON DELETE CASCADE,
    key      TEXT NOT NULL,
    value    TEXT NOT NULL,
    PRIMARY KEY (run_uuid, key)
) WITHOUT ROWID;

-- Every logged point. The primary key is MLflow's: logging the same point twice
-- is a no-op, and (run_uuid, key, step) order serves get-history directly.
-- NaN is stored as value 0 with is_nan 1 because SQLite turns NaN into NULL.
CREATE TABLE metrics (
    run_uuid  TEXT    NOT NULL,
    key       TEXT    NOT NULL,
    step      INTEGER NOT NULL,
    timestamp INTEGER NOT NULL,
    value     REAL    NOT NULL,
    is_nan    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_uuid, key, step, timestamp, value, is_nan)
) WITHOUT ROWID;

-- The point search-runs sees for each (run, key): highest step, then latest
-- timestamp, then largest value, as MLflow decides it.
CREATE TABLE latest_metrics (
    run_uuid  TEXT    NOT NULL,
    key       TEXT    NOT NULL,
    step      INTEGER NOT NULL,
    timestamp INTEGER NOT NULL,
    value     REAL    NOT NULL,
    is_nan    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_uuid, key)
) WITHOUT ROWID;
CREATE INDEX latest_metrics_by_key ON latest_metrics(key, value);

CREATE TABLE datasets (
    dataset_uuid  TEXT    PRIMARY KEY,
    experiment_id INTEGER NOT NULL REFERENCES experiments(experiment_id) ON DELETE CASCADE,
    name          TEXT    NOT NULL,
    digest        TEXT    NOT NULL,
    source_type   TEXT    NOT NULL,
    source        TEXT    NOT NULL,
    schema        TEXT    NOT NULL DEFAULT '',
    profile       TEXT    NOT NULL DEFAULT '',
    UNIQUE (experiment_id, name, digest)
);

CREATE TABLE run_inputs (
    run_uuid     TEXT NOT NULL REFERENCES runs(run_uuid) ON DELETE CASCADE,
    dataset_uuid TEXT NOT NULL REFERENCES datasets(dataset_uuid) ON DELETE CASCADE,
    PRIMARY KEY (run_uuid, dataset_uuid)
) WITHOUT ROWID;

CREATE TABLE run_input_tags (
    run_uuid     TEXT NOT NULL,
    dataset_uuid TEXT NOT NULL,
    key          TEXT NOT NULL,
    value        TEXT NOT NULL,
    PRIMARY KEY (run_uuid, dataset_uuid, key),
    FOREIGN KEY (run_uuid, dataset_uuid) REFERENCES run_inputs(run_uuid, dataset_uuid) ON DELETE CASCADE
) WITHOUT ROWID;

-- API tokens. Only a SHA-256 of the secret is kept.
CREATE TABLE api_tokens (
    token_id     TEXT    PRIMARY KEY,
    name         TEXT    NOT NULL,
    username     TEXT    NOT NULL,
    role         TEXT    NOT NULL,
    secret_hash  TEXT    NOT NULL UNIQUE,
    created_time INTEGER NOT NULL,
    last_used    INTEGER,
    revoked_time INTEGER
);
