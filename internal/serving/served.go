package serving

import (
	"context"
	"database/sql"
)

// recordServed notes each model version a deployment's table serves, for
// lineage. Versions already noted are left as they are, so this costs a
// write only when a deployment starts serving a version it never served.
func (s *Service) recordServed(ctx context.Context, name string, t *table) {
	routes := t.routes
	if t.shadow != nil {
		routes = append(routes[:len(routes):len(routes)], *t.shadow)
	}
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		for _, r := range routes {
			if _, err := tx.ExecContext(ctx, s.db.Q(`INSERT INTO deployment_versions (deployment, model_name, version, first_revision, first_time)
				VALUES (?, ?, ?, ?, ?) ON CONFLICT (deployment, model_name, version) DO NOTHING`),
				name, r.model.Name, r.model.Version, t.revision, s.nowMillis()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil && ctx.Err() == nil {
		s.Log.Warn("recording what a deployment serves", "deployment", name, "err", err)
	}
}
