-- Progressive rollouts: a canary whose share is raised step by step while
-- its error rate and latency stay within bounds of the stable version's.
-- One row per deployment, its latest rollout; revision is the deployment
-- revision the rollout itself made last, so a change by hand is noticed.
CREATE TABLE deployment_rollouts (
    deployment   TEXT    NOT NULL PRIMARY KEY REFERENCES deployments(name) ON DELETE CASCADE,
    spec         TEXT    NOT NULL,
    step         BIGINT  NOT NULL,
    state        TEXT    NOT NULL,
    reason       TEXT    NOT NULL DEFAULT '',
    revision     BIGINT  NOT NULL,
    started_time BIGINT  NOT NULL,
    step_time    BIGINT  NOT NULL,
    updated_time BIGINT  NOT NULL,
    started_by   TEXT    NOT NULL DEFAULT ''
);

CREATE INDEX deployment_rollouts_state ON deployment_rollouts (state);

-- The model versions each deployment has served, resolved from its routes
-- (aliases included) when they were loaded: lineage's model -> deployment
-- edges. Kept after a deployment is deleted, as history.
CREATE TABLE deployment_versions (
    deployment     TEXT    NOT NULL,
    model_name     TEXT    NOT NULL,
    version        BIGINT  NOT NULL,
    first_revision BIGINT  NOT NULL,
    first_time     BIGINT  NOT NULL,
    PRIMARY KEY (deployment, model_name, version)
);

CREATE INDEX deployment_versions_model ON deployment_versions (model_name, version);
