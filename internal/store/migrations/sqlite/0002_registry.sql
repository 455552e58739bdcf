-- Model registry: registered models, their versions, tags and aliases, as in
-- MLflow's registry (mlflow/protos/model_registry.proto), keyed by an id that
-- never changes so that a rename touches one row and registry storage
-- (registry/<model_id>/<version>/...) never moves. AUTOINCREMENT keeps a
-- deleted model's id from being handed to a new one.
CREATE TABLE registered_models (
    model_id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name              TEXT    NOT NULL UNIQUE,
    creation_time     INTEGER NOT NULL,
    last_updated_time INTEGER NOT NULL,
    description       TEXT
);
CREATE INDEX registered_models_by_updated ON registered_models(last_updated_time, name);

CREATE TABLE registered_model_tags (
    model_id INTEGER NOT NULL REFERENCES registered_models(model_id) ON DELETE CASCADE,
    key      TEXT    NOT NULL,
    value    TEXT    NOT NULL,
    PRIMARY KEY (model_id, key)
) WITHOUT ROWID;
CREATE INDEX registered_model_tags_by_value ON registered_model_tags(key, value);

-- A deleted version keeps its row (current_stage 'Deleted_Internal', as in
-- MLflow) so that its number is never issued again. manifest is the JSON list
-- of the version's files with their sizes and SHA-256 digests; digest is the
-- SHA-256 of that JSON.
CREATE TABLE model_versions (
    model_id          INTEGER NOT NULL REFERENCES registered_models(model_id) ON DELETE CASCADE,
    version           INTEGER NOT NULL,
    creation_time     INTEGER NOT NULL,
    last_updated_time INTEGER NOT NULL,
    description       TEXT,
    user_id           TEXT,
    current_stage     TEXT    NOT NULL DEFAULT 'None',
    source            TEXT    NOT NULL,
    run_id            TEXT,
    run_link          TEXT,
    status            TEXT    NOT NULL,
    status_message    TEXT,
    storage_location  TEXT    NOT NULL,
    manifest          TEXT    NOT NULL DEFAULT '',
    digest            TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (model_id, version)
);
CREATE INDEX model_versions_by_run ON model_versions(run_id);
CREATE INDEX model_versions_by_updated ON model_versions(last_updated_time);

CREATE TABLE model_version_tags (
    model_id INTEGER NOT NULL,
    version  INTEGER NOT NULL,
    key      TEXT    NOT NULL,
    value    TEXT    NOT NULL,
    PRIMARY KEY (model_id, version, key),
    FOREIGN KEY (model_id, version) REFERENCES model_versions(model_id, version) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX model_version_tags_by_value ON model_version_tags(key, value);

CREATE TABLE registered_model_aliases (
    model_id INTEGER NOT NULL REFERENCES registered_models(model_id) ON DELETE CASCADE,
    alias    TEXT    NOT NULL,
    version  INTEGER NOT NULL,
    PRIMARY KEY (model_id, alias)
) WITHOUT ROWID;
