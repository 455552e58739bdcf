-- Pipelines registered with the server: the spec as submitted and the
-- directory on the server's machine its steps run in. The webhook secret
-- is kept as given, because verifying an HMAC signature needs it.
CREATE TABLE pipelines (
    name           TEXT    NOT NULL PRIMARY KEY,
    spec           TEXT    NOT NULL,
    spec_file      TEXT    NOT NULL,
    project_dir    TEXT    NOT NULL,
    webhook_secret TEXT    NOT NULL DEFAULT '',
    created_time   BIGINT  NOT NULL,
    updated_time   BIGINT  NOT NULL,
    updated_by     TEXT    NOT NULL DEFAULT ''
);

-- A pipeline run is a queue entry first (queued), claimed by one server
-- (owner, with a heartbeat while it runs), and ends succeeded, failed or
-- cancelled. It keeps the spec it ran, so resume and show never depend on
-- later edits.
CREATE TABLE pipeline_runs (
    run_id           TEXT    NOT NULL PRIMARY KEY,
    pipeline         TEXT    NOT NULL REFERENCES pipelines(name) ON DELETE CASCADE,
    number           BIGINT  NOT NULL,
    status           TEXT    NOT NULL,
    trigger_kind     TEXT    NOT NULL,
    trigger_detail   TEXT    NOT NULL DEFAULT '{}',
    params           TEXT    NOT NULL DEFAULT '{}',
    spec             TEXT    NOT NULL,
    spec_file        TEXT    NOT NULL,
    force_run        BIGINT  NOT NULL DEFAULT 0,
    resumed_from     TEXT    NOT NULL DEFAULT '',
    mlflow_run_id    TEXT    NOT NULL DEFAULT '',
    experiment_id    TEXT    NOT NULL DEFAULT '',
    error            TEXT    NOT NULL DEFAULT '',
    cancel_requested BIGINT  NOT NULL DEFAULT 0,
    owner            TEXT    NOT NULL DEFAULT '',
    heartbeat        BIGINT  NOT NULL DEFAULT 0,
    created_by       TEXT    NOT NULL DEFAULT '',
    created_time     BIGINT  NOT NULL,
    start_time       BIGINT  NOT NULL DEFAULT 0,
    end_time         BIGINT  NOT NULL DEFAULT 0,
    UNIQUE (pipeline, number)
);
CREATE INDEX pipeline_runs_by_status ON pipeline_runs(status, created_time);

-- One row per step of a run, in spec order; result is the engine's record
-- of the step (decision, attempts, outputs, metrics) as JSON.
CREATE TABLE pipeline_run_steps (
    run_id        TEXT    NOT NULL REFERENCES pipeline_runs(run_id) ON DELETE CASCADE,
    step          TEXT    NOT NULL,
    position      BIGINT  NOT NULL,
    status        TEXT    NOT NULL,
    result        TEXT    NOT NULL DEFAULT '{}',
    mlflow_run_id TEXT    NOT NULL DEFAULT '',
    log_key       TEXT    NOT NULL DEFAULT '',
    start_time    BIGINT  NOT NULL DEFAULT 0,
    end_time      BIGINT  NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, step)
);

-- What starts runs without a person: a cron schedule (next_time is the
-- next firing, advanced in the same transaction that queues the run, so a
-- restart never fires it twice), new versions of a dataset (last_version
-- is the newest one already acted on), or a push webhook (at most one row
-- per pipeline, holding its branch filter; the secret stays on pipelines).
-- last_error says why the last firing queued no run.
CREATE TABLE pipeline_triggers (
    trigger_id   TEXT    NOT NULL PRIMARY KEY,
    pipeline     TEXT    NOT NULL REFERENCES pipelines(name) ON DELETE CASCADE,
    kind         TEXT    NOT NULL,
    cron         TEXT    NOT NULL DEFAULT '',
    timezone     TEXT    NOT NULL DEFAULT 'UTC',
    dataset      TEXT    NOT NULL DEFAULT '',
    branch       TEXT    NOT NULL DEFAULT '',
    params       TEXT    NOT NULL DEFAULT '{}',
    enabled      BIGINT  NOT NULL DEFAULT 1,
    next_time    BIGINT  NOT NULL DEFAULT 0,
    last_version BIGINT  NOT NULL DEFAULT 0,
    last_fired   BIGINT  NOT NULL DEFAULT 0,
    last_run_id  TEXT    NOT NULL DEFAULT '',
    last_error   TEXT    NOT NULL DEFAULT '',
    created_by   TEXT    NOT NULL DEFAULT '',
    created_time BIGINT  NOT NULL
);
CREATE INDEX pipeline_triggers_by_pipeline ON pipeline_triggers(pipeline);
-- The scheduler's poll: enabled schedules by their next firing.
CREATE INDEX pipeline_triggers_due ON pipeline_triggers(kind, enabled, next_time);
CREATE UNIQUE INDEX pipeline_triggers_one_webhook ON pipeline_triggers(pipeline) WHERE kind = 'webhook';
