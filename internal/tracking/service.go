package tracking

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"time"

	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/store"
)

// DefaultExperimentID is the experiment MLflow clients log to when they name
// none.
const DefaultExperimentID = "0"

// Service is the tracking domain over the metadata store.
type Service struct {
	db *store.DB
	// tiers says whether SearchRuns splits a search ordered by a metric into
	// tiers (search.SQL.Tiers). By default only on SQLite: PostgreSQL's
	// planner, misjudging how many runs the filter keeps, sorts every match
	// instead of walking the index even with fresh statistics, and the
	// split then only adds statements (docs/benchmarks.md). Tests set it
	// both ways on both dialects.
	tiers bool
	// runs holds runs search-runs loaded, checked against their versions.
	runs *runCache
	// Now is the clock; tests replace it.
	Now func() time.Time
	// ValidateLocation, when set, vets a client-supplied experiment artifact
	// location and returns the form to store; without it any non-empty
	// location is refused. The server supplies the artifact store's rules.
	ValidateLocation func(string) (string, error)
}

// New returns a Service and makes sure the Default experiment exists.
func New(ctx context.Context, db *store.DB) (*Service, error) {
	s := &Service{db: db, Now: time.Now, tiers: db.Dialect == store.SQLite, runs: newRunCache(runCacheBytes)}
	if err := s.ensureDefaultExperiment(ctx); err != nil {
		return nil, err
	}
	if err := s.moveMetricRows(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Service) nowMillis() int64 { return s.Now().UnixMilli() }

// DefaultArtifactLocation is where an experiment's artifacts live when its
// creator names no location: served by Slipway's artifact proxy, so clients
// need no storage credentials.
func DefaultArtifactLocation(experimentID string) string {
	return "mlflow-artifacts:/" + experimentID
}

func (s *Service) ensureDefaultExperiment(ctx context.Context) error {
	now := s.nowMillis()
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.db.Q(`INSERT INTO experiments
			(experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time)
			VALUES (0, 'Default', ?, 'active', ?, ?) ON CONFLICT DO NOTHING`),
			DefaultArtifactLocation(DefaultExperimentID), now, now)
		return err
	})
}

func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func maxResults(n int64, def, limit int) (int, error) {
	if n == 0 {
		return def, nil
	}
	if n < 0 || n > int64(limit) {
		return 0, errs.Invalid("Invalid value %d for parameter 'max_results' supplied. It must be at most %d, and at least 1.", n, limit)
	}
	return int(n), nil
}

func notFound(err error, format string, args ...any) error {
	if errors.Is(err, sql.ErrNoRows) {
		return errs.NotFoundf(format, args...)
	}
	return err
}
