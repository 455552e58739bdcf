-- Governance: promotion policies, approvals and the audit log.
--
-- A model's policy is one JSON document (the gates per alias and per stage),
-- replaced whole, as it is edited: a YAML file in version control.
CREATE TABLE promotion_policies (
    model_id     INTEGER NOT NULL PRIMARY KEY REFERENCES registered_models(model_id) ON DELETE CASCADE,
    policy       TEXT    NOT NULL,
    updated_time INTEGER NOT NULL,
    updated_by   TEXT    NOT NULL
);

-- One approval per approver, version and target ('alias:<name>' or
-- 'stage:<Stage>'); approving again replaces the comment.
CREATE TABLE model_version_approvals (
    model_id      INTEGER NOT NULL,
    version       INTEGER NOT NULL,
    target        TEXT    NOT NULL,
    approver      TEXT    NOT NULL,
    approver_role TEXT    NOT NULL,
    comment       TEXT    NOT NULL DEFAULT '',
    creation_time INTEGER NOT NULL,
    PRIMARY KEY (model_id, version, target, approver),
    FOREIGN KEY (model_id, version) REFERENCES model_versions(model_id, version) ON DELETE CASCADE
) WITHOUT ROWID;

-- Every registry and data change: who, when, what, and the state before and
-- after as JSON. Targets are names, not foreign keys, so the record outlives
-- what it describes. target_version is 0 for a whole model or dataset.
CREATE TABLE audit_log (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    event_time     INTEGER NOT NULL,
    actor          TEXT    NOT NULL,
    action         TEXT    NOT NULL,
    target_type    TEXT    NOT NULL,
    target_name    TEXT    NOT NULL,
    target_version INTEGER NOT NULL DEFAULT 0,
    before_json    TEXT,
    after_json     TEXT
);
CREATE INDEX audit_log_by_target ON audit_log(target_type, target_name, target_version);
CREATE INDEX audit_log_by_actor ON audit_log(actor);
CREATE INDEX audit_log_by_time ON audit_log(event_time);

-- Append-only in the database itself, so no code path (nor a stray UPDATE in
-- a shell) can rewrite history. Someone who can drop triggers can still;
-- that is the database's owner, whom no schema can stop.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only: rows cannot be updated');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only: rows cannot be deleted');
END;
