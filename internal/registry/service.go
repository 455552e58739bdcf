package registry

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/slipwayml/slipway/internal/audit"
	"github.com/slipwayml/slipway/internal/blob"
	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/store"
	"github.com/slipwayml/slipway/internal/tracking"
	"github.com/slipwayml/slipway/internal/tracking/search"
)

// StorageDir is the top-level folder of the artifact store that holds
// registered versions' files. Only the registry writes there; the artifact
// proxy serves it read-only and verified.
const StorageDir = "registry"

// Service is the model registry over the metadata store and the artifact
// store.
type Service struct {
	db        *store.DB
	artifacts *blob.Store
	tracking  *tracking.Service
	auditLog  *audit.Log
	// Now is the clock; tests replace it.
	Now func() time.Time
	// Log receives what cannot be returned, such as files a delete left.
	Log *slog.Logger
}

// New returns a registry. Sources naming runs are resolved through tr.
func New(db *store.DB, artifacts *blob.Store, tr *tracking.Service) *Service {
	return &Service{db: db, artifacts: artifacts, tracking: tr, auditLog: audit.New(db), Now: time.Now, Log: slog.Default()}
}

func (s *Service) nowMillis() int64 { return s.Now().UnixMilli() }

func (s *Service) dialect() search.Dialect {
	if s.db.Dialect == store.Postgres {
		return search.Postgres
	}
	return search.SQLite
}

type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func modelNotFound(name string) error {
	return errs.NotFoundf("Registered Model with name=%s not found", name)
}

func versionNotFound(name string, version int64) error {
	return errs.NotFoundf("Model Version (name=%s, version=%d) not found", name, version)
}

// modelID looks up a registered model's id by name.
func (s *Service) modelID(ctx context.Context, q queryer, name string) (int64, error) {
	if err := validateName("name", name); err != nil {
		return 0, err
	}
	var id int64
	err := q.QueryRowContext(ctx, s.db.Q(`SELECT model_id FROM registered_models WHERE name = ?`), name).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, modelNotFound(name)
	}
	return id, err
}

// CreateRegisteredModel creates a model with no versions.
func (s *Service) CreateRegisteredModel(ctx context.Context, name string, tags []Tag, description *string) (RegisteredModel, error) {
	if err := validateName("name", name); err != nil {
		return RegisteredModel{}, err
	}
	if err := validateTags(tags); err != nil {
		return RegisteredModel{}, err
	}
	if description != nil {
		if err := checkText("description", *description, MaxDescription); err != nil {
			return RegisteredModel{}, err
		}
	}
	now := s.nowMillis()
	err := s.db.Batch(ctx, func(tx *sql.Tx) error {
		var id int64
		err := tx.QueryRowContext(ctx, s.db.Q(`INSERT INTO registered_models (name, creation_time, last_updated_time, description)
			VALUES (?, ?, ?, ?) RETURNING model_id`), name, now, now, description).Scan(&id)
		if store.IsUniqueViolation(err) {
			return errs.New(errs.AlreadyExists, "Registered Model (name=%s) already exists.", name)
		}
		if err != nil {
			return err
		}
		if err := s.upsertModelTags(ctx, tx, id, tags); err != nil {
			return err
		}
		return s.record(ctx, tx, "registered_model.create", audit.Model(name), nil,
			map[string]any{"name": name, "description": description, "tags": tagMap(tags)})
	})
	if err != nil {
		return RegisteredModel{}, err
	}
	return s.GetRegisteredModel(ctx, name)
}

func (s *Service) upsertModelTags(ctx context.Context, tx *sql.Tx, id int64, tags []Tag) error {
	for _, t := range tags {
		if _, err := tx.ExecContext(ctx, s.db.Q(`INSERT INTO registered_model_tags (model_id, key, value) VALUES (?, ?, ?)
			ON CONFLICT (model_id, key) DO UPDATE SET value = excluded.value`), id, t.Key, t.Value); err != nil {
			return err
		}
	}
	return nil
}

// GetRegisteredModel returns a model with its latest versions, tags and
// aliases.
func (s *Service) GetRegisteredModel(ctx context.Context, name string) (RegisteredModel, error) {
	id, err := s.modelID(ctx, s.db.Read, name)
	if err != nil {
		return RegisteredModel{}, err
	}
	models, err := s.loadModels(ctx, []int64{id})
	if err != nil {
		return RegisteredModel{}, err
	}
	if len(models) == 0 {
		return RegisteredModel{}, modelNotFound(name)
	}
	return models[0], nil
}

// UpdateRegisteredModel sets a model's description (nil clears it).
func (s *Service) UpdateRegisteredModel(ctx context.Context, name string, description *string) (RegisteredModel, error) {
	if description != nil {
		if err := checkText("description", *description, MaxDescription); err != nil {
			return RegisteredModel{}, err
		}
	}
	err := s.db.Batch(ctx, func(tx *sql.Tx) error {
		id, err := s.modelID(ctx, tx, name)
		if err != nil {
			return err
		}
		old, err := s.description(ctx, tx, `SELECT description FROM registered_models WHERE model_id = ?`, id)
		if err != nil {
			return err
		}
		if _, err = tx.ExecContext(ctx, s.db.Q(`UPDATE registered_models SET description = ?, last_updated_time = ? WHERE model_id = ?`),
			description, s.nowMillis(), id); err != nil {
			return err
		}
		return s.record(ctx, tx, "registered_model.update", audit.Model(name),
			map[string]any{"description": old}, map[string]any{"description": description})
	})
	if err != nil {
		return RegisteredModel{}, err
	}
	return s.GetRegisteredModel(ctx, name)
}

// RenameRegisteredModel renames a model. Its versions' files stay where
// they are: storage is keyed by the model's id, not its name.
func (s *Service) RenameRegisteredModel(ctx context.Context, name, newName string) (RegisteredModel, error) {
	if newName == "" {
		return RegisteredModel{}, missing("new_name")
	}
	if err := validateName("new_name", newName); err != nil {
		return RegisteredModel{}, err
	}
	err := s.db.Batch(ctx, func(tx *sql.Tx) error {
		id, err := s.modelID(ctx, tx, name)
		if err != nil {
			return err
		}
		now := s.nowMillis()
		_, err = tx.ExecContext(ctx, s.db.Q(`UPDATE registered_models SET name = ?, last_updated_time = ? WHERE model_id = ?`), newName, now, id)
		if store.IsUniqueViolation(err) {
			return errs.New(errs.AlreadyExists, "Registered Model (name=%s) already exists.", newName)
		}
		if err != nil {
			return err
		}
		if _, err = tx.ExecContext(ctx, s.db.Q(`UPDATE model_versions SET last_updated_time = ? WHERE model_id = ?`), now, id); err != nil {
			return err
		}
		// Recorded under the new name, so the model's history read by its
		// current name starts by pointing at the old one.
		return s.record(ctx, tx, "registered_model.rename", audit.Model(newName), map[string]any{"name": name}, map[string]any{"name": newName})
	})
	if err != nil {
		return RegisteredModel{}, err
	}
	return s.GetRegisteredModel(ctx, newName)
}

// DeleteRegisteredModel deletes a model, its versions, tags and aliases,
// and then its versions' files.
func (s *Service) DeleteRegisteredModel(ctx context.Context, name string) error {
	var id int64
	err := s.db.Batch(ctx, func(tx *sql.Tx) error {
		var err error
		if id, err = s.modelID(ctx, tx, name); err != nil {
			return err
		}
		before, err := s.modelState(ctx, tx, id)
		if err != nil {
			return err
		}
		if _, err = tx.ExecContext(ctx, s.db.Q(`DELETE FROM registered_models WHERE model_id = ?`), id); err != nil {
			return err
		}
		return s.record(ctx, tx, "registered_model.delete", audit.Model(name), before, nil)
	})
	if err != nil {
		return err
	}
	s.removeFiles(ctx, modelDir(id))
	return nil
}

// removeFiles deletes registry files whose rows are gone. A failure leaves
// unreachable files, not a broken model, so it is logged, not returned:
// the delete the caller asked for has happened.
func (s *Service) removeFiles(ctx context.Context, key string) {
	if err := s.artifacts.Delete(context.WithoutCancel(ctx), key); err != nil {
		s.Log.Warn("registry: could not delete files of a deleted model or version", "key", key, "err", err)
	}
}

// SetRegisteredModelTag sets a tag on a model.
func (s *Service) SetRegisteredModelTag(ctx context.Context, name string, tag Tag) error {
	if err := validateName("name", name); err != nil {
		return err
	}
	if err := validateTag(tag, ""); err != nil {
		return err
	}
	return s.db.Batch(ctx, func(tx *sql.Tx) error {
		id, err := s.modelID(ctx, tx, name)
		if err != nil {
			return err
		}
		old, err := s.modelTagValue(ctx, tx, id, tag.Key)
		if err != nil {
			return err
		}
		if err := s.upsertModelTags(ctx, tx, id, []Tag{tag}); err != nil {
			return err
		}
		return s.record(ctx, tx, "registered_model.set_tag", audit.Model(name), tagState(tag.Key, old), tagState(tag.Key, &tag.Value))
	})
}

// DeleteRegisteredModelTag removes a tag; a missing tag is not an error.
func (s *Service) DeleteRegisteredModelTag(ctx context.Context, name, key string) error {
	if err := validateName("name", name); err != nil {
		return err
	}
	if err := validateTag(Tag{Key: key}, ""); err != nil {
		return err
	}
	return s.db.Batch(ctx, func(tx *sql.Tx) error {
		id, err := s.modelID(ctx, tx, name)
		if err != nil {
			return err
		}
		old, err := s.modelTagValue(ctx, tx, id, key)
		if err != nil || old == nil {
			return err
		}
		if _, err = tx.ExecContext(ctx, s.db.Q(`DELETE FROM registered_model_tags WHERE model_id = ? AND key = ?`), id, key); err != nil {
			return err
		}
		return s.record(ctx, tx, "registered_model.delete_tag", audit.Model(name), tagState(key, old), nil)
	})
}

// SearchRegisteredModelsRequest mirrors MLflow's SearchRegisteredModels.
type SearchRegisteredModelsRequest struct {
	Filter     string
	MaxResults int64
	OrderBy    []string
	PageToken  string
}

// SearchRegisteredModels returns one page of models in order.
func (s *Service) SearchRegisteredModels(ctx context.Context, req SearchRegisteredModelsRequest) ([]RegisteredModel, string, error) {
	limit, err := pageLimit(req.MaxResults, DefaultSearchModel, MaxSearchModels)
	if err != nil {
		return nil, "", err
	}
	f, err := search.ParseRegisteredModelFilter(req.Filter)
	if err != nil {
		return nil, "", err
	}
	var orders []search.OrderBy
	for _, o := range req.OrderBy {
		ob, err := search.ParseRegisteredModelOrderBy(o)
		if err != nil {
			return nil, "", err
		}
		orders = append(orders, ob)
	}
	compiled, err := search.CompileRegisteredModels(f, orders, s.dialect())
	if err != nil {
		return nil, "", err
	}
	offset, err := search.DecodePageToken(req.PageToken)
	if err != nil {
		return nil, "", err
	}
	q := `SELECT rm.model_id FROM registered_models rm`
	if compiled.Where != "" {
		q += ` WHERE ` + compiled.Where
	}
	q += ` ORDER BY ` + compiled.OrderBy + ` LIMIT ? OFFSET ?`
	args := append(compiled.WhereArgs, limit+1, offset)
	ids, err := s.int64s(ctx, q, args...)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(ids) > limit {
		ids = ids[:limit]
		next = search.EncodePageToken(offset + limit)
	}
	models, err := s.loadModels(ctx, ids)
	return models, next, err
}

func pageLimit(n int64, def, limit int) (int, error) {
	switch {
	case n == 0:
		return def, nil
	case n < 0:
		return 0, errs.Invalid("Invalid value for max_results. It must be a positive integer, but got %d", n)
	case n > int64(limit):
		return 0, errs.Invalid("Invalid value for request parameter max_results. It must be at most %d, but got value %d", limit, n)
	}
	return int(n), nil
}

func (s *Service) int64s(ctx context.Context, q string, args ...any) ([]int64, error) {
	rows, err := s.db.Read.QueryContext(ctx, s.db.Q(q), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

func int64Args(ids []int64) []any {
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	return args
}

// loadModels reads whole registered models for ids, in the order given,
// with one query per table rather than per model.
func (s *Service) loadModels(ctx context.Context, ids []int64) ([]RegisteredModel, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	byID := make(map[int64]*RegisteredModel, len(ids))
	in := `(` + placeholders(len(ids)) + `)`
	args := int64Args(ids)
	err := s.db.EachRow(ctx, `SELECT model_id, name, creation_time, last_updated_time, description FROM registered_models WHERE model_id IN `+in, args, func(rows *sql.Rows) error {
		var id int64
		var m RegisteredModel
		var desc sql.NullString
		if err := rows.Scan(&id, &m.Name, &m.CreationTime, &m.LastUpdatedTime, &desc); err != nil {
			return err
		}
		if desc.Valid {
			m.Description = &desc.String
		}
		byID[id] = &m
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = s.db.EachRow(ctx, `SELECT model_id, key, value FROM registered_model_tags WHERE model_id IN `+in+` ORDER BY model_id, key`, args, func(rows *sql.Rows) error {
		var id int64
		var t Tag
		if err := rows.Scan(&id, &t.Key, &t.Value); err != nil {
			return err
		}
		if m := byID[id]; m != nil {
			m.Tags = append(m.Tags, t)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = s.db.EachRow(ctx, `SELECT model_id, alias, version FROM registered_model_aliases WHERE model_id IN `+in+` ORDER BY model_id, alias`, args, func(rows *sql.Rows) error {
		var id int64
		var a Alias
		if err := rows.Scan(&id, &a.Alias, &a.Version); err != nil {
			return err
		}
		if m := byID[id]; m != nil {
			m.Aliases = append(m.Aliases, a)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	latest, err := s.latestVersions(ctx, in, args)
	if err != nil {
		return nil, err
	}
	out := make([]RegisteredModel, 0, len(ids))
	for _, id := range ids {
		m := byID[id]
		if m == nil {
			continue
		}
		m.LatestVersions = latest[id]
		out = append(out, *m)
	}
	return out, nil
}

// GetLatestVersions returns the newest version in each of stages (every
// stage when none are named), with their aliases.
func (s *Service) GetLatestVersions(ctx context.Context, name string, stages []string) ([]ModelVersion, error) {
	want := map[string]bool{}
	for _, st := range stages {
		c, err := CanonicalStage(st)
		if err != nil {
			return nil, err
		}
		want[c] = true
	}
	m, err := s.GetRegisteredModel(ctx, name)
	if err != nil {
		return nil, err
	}
	var out []ModelVersion
	for _, v := range m.LatestVersions {
		if len(want) > 0 && !want[v.CurrentStage] {
			continue
		}
		for _, a := range m.Aliases {
			if a.Version == v.Version {
				v.Aliases = append(v.Aliases, a.Alias)
			}
		}
		out = append(out, v)
	}
	return out, nil
}

// SetAlias points alias at a version of a model, moving it if it exists.
// When the model's promotion policy has gates for the alias, the version
// must pass them all, checked in the same transaction as the move;
// otherwise the error is FailedPrecondition naming every unmet gate, and
// nothing changes. Pointing an alias where it already points changes
// nothing and is not checked.
func (s *Service) SetAlias(ctx context.Context, name, alias string, version int64) error {
	if err := validateName("name", name); err != nil {
		return err
	}
	if err := validateAlias(alias); err != nil {
		return err
	}
	return s.db.Batch(ctx, func(tx *sql.Tx) error {
		v, err := s.versionRow(ctx, tx, name, version)
		if err != nil {
			return err
		}
		old, err := s.aliasVersion(ctx, tx, v.modelID, alias)
		if err != nil || old == version {
			return err
		}
		if err := s.enforce(ctx, tx, v, AliasTarget(alias)); err != nil {
			return err
		}
		if _, err = tx.ExecContext(ctx, s.db.Q(`INSERT INTO registered_model_aliases (model_id, alias, version) VALUES (?, ?, ?)
			ON CONFLICT (model_id, alias) DO UPDATE SET version = excluded.version`), v.modelID, alias, version); err != nil {
			return err
		}
		return s.record(ctx, tx, "registered_model.set_alias", audit.Model(name), aliasState(alias, old), aliasState(alias, version))
	})
}

// DeleteAlias removes an alias; a missing alias is not an error.
func (s *Service) DeleteAlias(ctx context.Context, name, alias string) error {
	if err := validateName("name", name); err != nil {
		return err
	}
	if err := validateAlias(alias); err != nil {
		return err
	}
	return s.db.Batch(ctx, func(tx *sql.Tx) error {
		id, err := s.modelID(ctx, tx, name)
		if err != nil {
			return err
		}
		old, err := s.aliasVersion(ctx, tx, id, alias)
		if err != nil || old == 0 {
			return err
		}
		if _, err = tx.ExecContext(ctx, s.db.Q(`DELETE FROM registered_model_aliases WHERE model_id = ? AND alias = ?`), id, alias); err != nil {
			return err
		}
		return s.record(ctx, tx, "registered_model.delete_alias", audit.Model(name), aliasState(alias, old), nil)
	})
}

// GetVersionByAlias returns the version an alias points at. As in MLflow,
// an unknown alias is an invalid parameter, not a missing resource.
func (s *Service) GetVersionByAlias(ctx context.Context, name, alias string) (ModelVersion, error) {
	if err := validateName("name", name); err != nil {
		return ModelVersion{}, err
	}
	if err := validateAlias(alias); err != nil {
		return ModelVersion{}, err
	}
	var version int64
	err := s.db.Read.QueryRowContext(ctx, s.db.Q(`SELECT a.version FROM registered_model_aliases a
		JOIN registered_models rm ON rm.model_id = a.model_id WHERE rm.name = ? AND a.alias = ?`), name, alias).Scan(&version)
	if errors.Is(err, sql.ErrNoRows) {
		return ModelVersion{}, errs.Invalid("Registered model alias %s not found.", alias)
	}
	if err != nil {
		return ModelVersion{}, err
	}
	return s.GetModelVersion(ctx, name, version)
}

func modelDir(id int64) string { return fmt.Sprintf("%s/%d", StorageDir, id) }

func versionDir(id, version int64) string { return fmt.Sprintf("%s/%d/%d", StorageDir, id, version) }
