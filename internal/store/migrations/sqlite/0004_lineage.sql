-- Lineage reads references other domains record; these columns and indexes
-- let it walk them both ways without scanning.
--
-- A version registered from a models:/ or runs:/ source records what that
-- source resolved to at registration: an alias moves and a model can be
-- renamed, but where the files came from never changes. source_run_id is
-- set even when the client sent no run_id, which MLflow allows.
ALTER TABLE model_versions ADD COLUMN source_run_id TEXT;
ALTER TABLE model_versions ADD COLUMN source_model_id INTEGER;
ALTER TABLE model_versions ADD COLUMN source_version INTEGER;
CREATE INDEX model_versions_by_source_run ON model_versions(source_run_id);
CREATE INDEX model_versions_by_source_version ON model_versions(source_model_id, source_version);

-- A runs:/<run_id>/<path> source names its run exactly, so versions
-- registered before this migration get theirs too. (Which version a past
-- models:/ source meant cannot be known now: its alias may have moved.)
UPDATE model_versions
SET source_run_id = CASE WHEN instr(substr(source, 7), '/') > 0
        THEN substr(source, 7, instr(substr(source, 7), '/') - 1)
        ELSE substr(source, 7) END
WHERE lower(substr(source, 1, 6)) = 'runs:/' AND current_stage <> 'Deleted_Internal';

-- An MLflow dataset record names a data version by a prefix of its digest
-- of at least 12 hex digits (MLflow caps digests at 36 characters). Down
-- from a data version: datasets by each possible prefix, then run_inputs
-- by dataset. Up from a run: versions by their digest's first 12 digits;
-- internal/lineage queries this exact expression.
CREATE INDEX datasets_by_digest ON datasets(digest);
CREATE INDEX run_inputs_by_dataset ON run_inputs(dataset_uuid);
CREATE INDEX data_versions_by_digest_prefix ON data_versions(substr(digest, 1, 12));
