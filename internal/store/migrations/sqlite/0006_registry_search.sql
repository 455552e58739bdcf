-- search_registered_models returns each model's latest_versions: the newest
-- READY version per stage. With this index they are found from index entries
-- alone (GROUP BY model_id, current_stage over a page of models) instead of
-- reading every version row of every model on the page (docs/benchmarks.md,
-- "Registry search").
CREATE INDEX model_versions_latest ON model_versions(model_id, status, current_stage, version);

-- The server looks for abandoned registrations every minute
-- (registry.RecoverPending); this index holds only the few rows it looks
-- for, so the look costs nothing however many versions there are.
CREATE INDEX model_versions_pending ON model_versions(last_updated_time) WHERE status = 'PENDING_REGISTRATION';
