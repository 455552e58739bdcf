-- Deployments: a name and the split of its traffic over model versions,
-- each named through the registry (models:/NAME/N or models:/NAME@ALIAS).
-- Every change is a new revision; rollback applies an earlier one again.
CREATE TABLE deployments (
    name         TEXT    NOT NULL PRIMARY KEY,
    split        TEXT    NOT NULL,
    revision     BIGINT  NOT NULL,
    created_time BIGINT  NOT NULL,
    updated_time BIGINT  NOT NULL,
    updated_by   TEXT    NOT NULL DEFAULT ''
);

CREATE TABLE deployment_revisions (
    name         TEXT    NOT NULL REFERENCES deployments(name) ON DELETE CASCADE,
    revision     BIGINT  NOT NULL,
    split        TEXT    NOT NULL,
    action       TEXT    NOT NULL,
    created_time BIGINT  NOT NULL,
    created_by   TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (name, revision)
);
