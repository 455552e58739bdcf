package main

import (
	"context"
	"database/sql"
	"strings"

	"github.com/slipwayml/slipway/internal/store"
)

// The stand-in for MLflow: the statements MLflow's SqlAlchemyStore sends
// for one search_registered_models page (mlflow/store/model_registry/
// sqlalchemy_store.py and dbmodels/models.py), executed on Slipway's
// tables in the same database, with no Python, ORM or JSON on top. It is
// therefore a lower bound on what MLflow spends in the database. MLflow
// keys its tables by model name where Slipway uses an id; the stand-in
// joins on the id, which is the same shape of work.
//
//  1. The page: registered_models joined to a subquery over
//     registered_model_tags that ORs one (key, value) condition per tag
//     filter, GROUPs BY model and keeps models with HAVING COUNT = the
//     number of tag keys; ORDER BY the order_by columns then name,
//     LIMIT max_results+1 OFFSET.
//  2. subqueryload(registered_model_tags): statement 1 again as a
//     subquery, joined to the tags.
//  3. to_mlflow_entity, per model on the page: the lazy load of all its
//     model_versions (every stage, deleted ones too), then per latest
//     version the lazy load of its tags, then the lazy load of the
//     model's aliases.
//
// The statements run one after another on one connection, as a
// SQLAlchemy session runs them.
type standin struct {
	db *store.DB
}

type standinModel struct {
	id       int64
	name     string
	tags     []kv
	latest   []version
	aliases  []alias
	versions int
}

// search runs one page and returns the models and how many statements it
// took.
func (s standin) search(ctx context.Context, sc scenario) ([]standinModel, int, error) {
	conn, err := s.db.Read.Conn(ctx)
	if err != nil {
		return nil, 0, err
	}
	defer conn.Close()
	statements := 0
	q := func(query string, args []any, fn func(*sql.Rows) error) error {
		statements++
		rows, err := conn.QueryContext(ctx, s.db.Q(query), args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			if err := fn(rows); err != nil {
				return err
			}
		}
		return rows.Err()
	}

	from := `registered_models rm`
	var args []any
	if len(sc.Tags) > 0 {
		var ors []string
		for _, t := range sc.Tags {
			ors = append(ors, `(t.key = ? AND t.value = ?)`)
			args = append(args, t.k, t.v)
		}
		from += ` JOIN (SELECT t.model_id FROM registered_model_tags t WHERE ` + strings.Join(ors, ` OR `) +
			` GROUP BY t.model_id HAVING COUNT(1) = ?) f ON rm.model_id = f.model_id`
		args = append(args, len(sc.Tags))
	}
	order := `rm.name`
	if sc.ByUpdated {
		order = `rm.last_updated_time DESC, rm.name`
	}
	page := ` ORDER BY ` + order + ` LIMIT ? OFFSET ?`
	args = append(args, sc.MaxResults+1, sc.Offset)

	var out []standinModel
	byID := map[int64]int{}
	err = q(`SELECT rm.model_id, rm.name, rm.creation_time, rm.last_updated_time, rm.description FROM `+from+page, args, func(rows *sql.Rows) error {
		var m standinModel
		var created, updated int64
		var desc sql.NullString
		if err := rows.Scan(&m.id, &m.name, &created, &updated, &desc); err != nil {
			return err
		}
		byID[m.id] = len(out)
		out = append(out, m)
		return nil
	})
	if err != nil {
		return nil, statements, err
	}
	err = q(`SELECT t.model_id, t.key, t.value FROM (SELECT rm.model_id, rm.name, rm.last_updated_time FROM `+from+page+`) anon
		JOIN registered_model_tags t ON anon.model_id = t.model_id ORDER BY anon.model_id`, args, func(rows *sql.Rows) error {
		var id int64
		var t kv
		if err := rows.Scan(&id, &t.k, &t.v); err != nil {
			return err
		}
		if i, ok := byID[id]; ok {
			out[i].tags = append(out[i].tags, t)
		}
		return nil
	})
	if err != nil {
		return nil, statements, err
	}
	if len(out) > sc.MaxResults {
		out = out[:sc.MaxResults]
	}
	for i := range out {
		m := &out[i]
		order := []string{}
		by := map[string]version{}
		err := q(`SELECT version, creation_time, last_updated_time, description, user_id, current_stage, source, run_id, run_link, status, status_message
			FROM model_versions WHERE model_id = ?`, []any{m.id}, func(rows *sql.Rows) error {
			var v version
			var created, updated int64
			var desc, user, source, runID, runLink, status, msg sql.NullString
			if err := rows.Scan(&v.n, &created, &updated, &desc, &user, &v.stage, &source, &runID, &runLink, &status, &msg); err != nil {
				return err
			}
			m.versions++
			if v.stage == "Deleted_Internal" {
				return nil
			}
			cur, ok := by[v.stage]
			if !ok {
				order = append(order, v.stage)
			}
			if !ok || cur.n < v.n {
				by[v.stage] = v
			}
			return nil
		})
		if err != nil {
			return nil, statements, err
		}
		for _, st := range order {
			v := by[st]
			err := q(`SELECT key, value FROM model_version_tags WHERE model_id = ? AND version = ?`, []any{m.id, v.n}, func(rows *sql.Rows) error {
				var t kv
				if err := rows.Scan(&t.k, &t.v); err != nil {
					return err
				}
				v.tags = append(v.tags, t)
				return nil
			})
			if err != nil {
				return nil, statements, err
			}
			m.latest = append(m.latest, v)
		}
		err = q(`SELECT alias, version FROM registered_model_aliases WHERE model_id = ?`, []any{m.id}, func(rows *sql.Rows) error {
			var a alias
			if err := rows.Scan(&a.name, &a.version); err != nil {
				return err
			}
			m.aliases = append(m.aliases, a)
			return nil
		})
		if err != nil {
			return nil, statements, err
		}
	}
	return out, statements, nil
}
