-- A run's version goes up in every transaction that writes to the run (its
-- row, params, tags, latest metrics or inputs): search-runs keeps loaded
-- runs in memory and serves a copy only while the version it was loaded at
-- is the one its own query reads (internal/tracking/runcache.go).
--
-- SQLite's migration also adds a covering index on runs for the search's
-- walk; here an index holding version would make every write to a run a
-- non-HOT update, and PostgreSQL's planner does not walk that way.
ALTER TABLE runs ADD COLUMN version BIGINT NOT NULL DEFAULT 0;

-- The same index as SQLite's, which covers the search's walk there.
DROP INDEX latest_metrics_by_key;
CREATE INDEX latest_metrics_by_key ON latest_metrics(key, value, is_nan);
