-- Data versions: named datasets, each an append-only list of versions. A
-- version is a manifest of files (relative path, SHA-256, size) whose
-- contents live once each in the blob store under objects/sha256/, plus a
-- statistical profile per tabular file. Table names carry a data_ prefix
-- because "datasets" is MLflow's log-inputs table.
CREATE TABLE data_datasets (
    name             TEXT    PRIMARY KEY,
    latest_version   INTEGER NOT NULL DEFAULT 0,
    creation_time    INTEGER NOT NULL,
    last_update_time INTEGER NOT NULL
);

CREATE TABLE data_versions (
    name          TEXT    NOT NULL REFERENCES data_datasets(name),
    version       INTEGER NOT NULL,
    digest        TEXT    NOT NULL,
    file_count    INTEGER NOT NULL,
    total_size    INTEGER NOT NULL,
    message       TEXT    NOT NULL DEFAULT '',
    created_by    TEXT    NOT NULL DEFAULT '',
    creation_time INTEGER NOT NULL,
    PRIMARY KEY (name, version)
);
-- Lineage looks versions up by digest (MLflow dataset inputs carry one).
CREATE INDEX data_versions_by_digest ON data_versions(digest);

CREATE TABLE data_files (
    name    TEXT    NOT NULL,
    version INTEGER NOT NULL,
    path    TEXT    NOT NULL,
    digest  TEXT    NOT NULL,
    size    INTEGER NOT NULL,
    PRIMARY KEY (name, version, path),
    FOREIGN KEY (name, version) REFERENCES data_versions(name, version)
) WITHOUT ROWID;

-- One JSON profile per tabular file of a version: the baseline drift
-- monitoring compares against.
CREATE TABLE data_profiles (
    name    TEXT    NOT NULL,
    version INTEGER NOT NULL,
    path    TEXT    NOT NULL,
    profile TEXT    NOT NULL,
    PRIMARY KEY (name, version, path),
    FOREIGN KEY (name, version) REFERENCES data_versions(name, version)
) WITHOUT ROWID;

-- The catalog of objects known to be in the blob store, each verified
-- against its digest when it was uploaded. Asking which of 100,000 objects
-- are missing is then one indexed query, not 100,000 requests to S3.
CREATE TABLE data_objects (
    digest TEXT    PRIMARY KEY,
    size   INTEGER NOT NULL
);
