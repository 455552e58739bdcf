package registry

import (
	"context"
	"database/sql"
	"errors"

	"github.com/slipwayml/slipway/internal/audit"
)

// record writes one audit entry inside tx, the transaction of the change,
// so that the change and its record commit together.
func (s *Service) record(ctx context.Context, tx *sql.Tx, action string, target audit.Target, before, after any) error {
	return s.auditLog.Record(ctx, tx, audit.Change{Time: s.nowMillis(), Action: action, Target: target, Before: before, After: after})
}

func tagMap(tags []Tag) map[string]string {
	m := make(map[string]string, len(tags))
	for _, t := range tags {
		m[t.Key] = t.Value
	}
	return m
}

func tagState(key string, value *string) any {
	if value == nil {
		return nil
	}
	return map[string]string{"key": key, "value": *value}
}

// tagValue reads one tag's value in tx; nil when it is not set.
func tagValue(ctx context.Context, tx *sql.Tx, query string, args ...any) (*string, error) {
	var v string
	err := tx.QueryRowContext(ctx, query, args...).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &v, nil
}

func (s *Service) modelTagValue(ctx context.Context, tx *sql.Tx, id int64, key string) (*string, error) {
	return tagValue(ctx, tx, s.db.Q(`SELECT value FROM registered_model_tags WHERE model_id = ? AND key = ?`), id, key)
}

func (s *Service) versionTagValue(ctx context.Context, tx *sql.Tx, id, version int64, key string) (*string, error) {
	return tagValue(ctx, tx, s.db.Q(`SELECT value FROM model_version_tags WHERE model_id = ? AND version = ? AND key = ?`), id, version, key)
}

// description reads a nullable description column in tx.
func (s *Service) description(ctx context.Context, tx *sql.Tx, query string, args ...any) (*string, error) {
	var d sql.NullString
	if err := tx.QueryRowContext(ctx, s.db.Q(query), args...).Scan(&d); err != nil {
		return nil, err
	}
	if !d.Valid {
		return nil, nil
	}
	return &d.String, nil
}

// aliasVersion reads the version an alias points at in tx; 0 when unset.
func (s *Service) aliasVersion(ctx context.Context, tx *sql.Tx, id int64, alias string) (int64, error) {
	var v int64
	err := tx.QueryRowContext(ctx, s.db.Q(`SELECT version FROM registered_model_aliases WHERE model_id = ? AND alias = ?`), id, alias).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return v, err
}

func aliasState(alias string, version int64) any {
	if version == 0 {
		return nil
	}
	return map[string]any{"alias": alias, "version": version}
}

// modelState is what a delete removes from a model: its description, tags,
// aliases, promotion policy and the numbers of its live versions.
func (s *Service) modelState(ctx context.Context, tx *sql.Tx, id int64) (map[string]any, error) {
	desc, err := s.description(ctx, tx, `SELECT description FROM registered_models WHERE model_id = ?`, id)
	if err != nil {
		return nil, err
	}
	tags := map[string]string{}
	if err := eachRow(ctx, tx, s.db.Q(`SELECT key, value FROM registered_model_tags WHERE model_id = ?`), []any{id}, func(rows *sql.Rows) error {
		var k, v string
		err := rows.Scan(&k, &v)
		tags[k] = v
		return err
	}); err != nil {
		return nil, err
	}
	aliases := map[string]int64{}
	if err := eachRow(ctx, tx, s.db.Q(`SELECT alias, version FROM registered_model_aliases WHERE model_id = ?`), []any{id}, func(rows *sql.Rows) error {
		var a string
		var v int64
		err := rows.Scan(&a, &v)
		aliases[a] = v
		return err
	}); err != nil {
		return nil, err
	}
	versions := []int64{}
	if err := eachRow(ctx, tx, s.db.Q(`SELECT version FROM model_versions WHERE model_id = ? AND current_stage <> ? ORDER BY version`), []any{id, stageDeleted}, func(rows *sql.Rows) error {
		var v int64
		err := rows.Scan(&v)
		versions = append(versions, v)
		return err
	}); err != nil {
		return nil, err
	}
	state := map[string]any{"description": desc, "tags": tags, "aliases": aliases, "versions": versions}
	if sp, ok, err := s.loadPolicy(ctx, tx, id); err != nil {
		return nil, err
	} else if ok {
		state["policy"] = sp.Policy
	}
	return state, nil
}

// versionState is what a delete removes from a version.
func (s *Service) versionState(ctx context.Context, tx *sql.Tx, v ModelVersion) (map[string]any, error) {
	tags := map[string]string{}
	if err := eachRow(ctx, tx, s.db.Q(`SELECT key, value FROM model_version_tags WHERE model_id = ? AND version = ?`), []any{v.modelID, v.Version}, func(rows *sql.Rows) error {
		var k, val string
		err := rows.Scan(&k, &val)
		tags[k] = val
		return err
	}); err != nil {
		return nil, err
	}
	aliases := []string{}
	if err := eachRow(ctx, tx, s.db.Q(`SELECT alias FROM registered_model_aliases WHERE model_id = ? AND version = ? ORDER BY alias`), []any{v.modelID, v.Version}, func(rows *sql.Rows) error {
		var a string
		err := rows.Scan(&a)
		aliases = append(aliases, a)
		return err
	}); err != nil {
		return nil, err
	}
	return map[string]any{"stage": v.CurrentStage, "status": v.Status, "source": v.Source, "run_id": v.RunID,
		"digest": v.Digest, "description": v.Description, "tags": tags, "aliases": aliases}, nil
}
