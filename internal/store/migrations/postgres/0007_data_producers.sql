-- The run that produced a data version (slipway data add --run), the
-- "produced" edge of lineage; empty when no run is named.
ALTER TABLE data_versions ADD COLUMN run_id TEXT NOT NULL DEFAULT '';
CREATE INDEX data_versions_by_run ON data_versions(run_id) WHERE run_id <> '';
