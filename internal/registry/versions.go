package registry

import (
	"context"
	"database/sql"
	"errors"
	"strings"

	"github.com/slipwayml/slipway/internal/audit"
	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/store"
	"github.com/slipwayml/slipway/internal/tracking/search"
)

// CreateModelVersionRequest mirrors MLflow's CreateModelVersion; UserID is
// who registers it, when known.
type CreateModelVersionRequest struct {
	Name        string
	Source      string
	RunID       string
	RunLink     string
	Description string
	Tags        []Tag
	UserID      string
}

// createRetries bounds retries when two registrations of one model race
// for the same version number (possible on PostgreSQL, whose group commits
// run in parallel).
const createRetries = 3

// CreateModelVersion registers the files at req.Source as the model's next
// version. The files are copied into registry storage and hashed before the
// version is READY; if that fails, the version is removed again and nothing
// of it remains.
func (s *Service) CreateModelVersion(ctx context.Context, req CreateModelVersionRequest) (ModelVersion, error) {
	if err := validateName("name", req.Name); err != nil {
		return ModelVersion{}, err
	}
	if req.Source == "" {
		return ModelVersion{}, missing("source")
	}
	if err := validateTags(req.Tags); err != nil {
		return ModelVersion{}, err
	}
	for _, f := range []struct {
		name, value string
		limit       int
	}{{"source", req.Source, MaxSourceLength}, {"run_id", req.RunID, 256}, {"run_link", req.RunLink, MaxRunLinkLength},
		{"description", req.Description, MaxDescription}, {"user_id", req.UserID, 256}} {
		if err := checkText(f.name, f.value, f.limit); err != nil {
			return ModelVersion{}, err
		}
	}
	// The model must exist before its source is worth resolving.
	if _, err := s.modelID(ctx, s.db.Read, req.Name); err != nil {
		return ModelVersion{}, err
	}
	src, err := s.resolveSource(ctx, req.Source, req.RunID)
	if err != nil {
		return ModelVersion{}, err
	}

	var modelID, version int64
	for attempt := 0; ; attempt++ {
		modelID, version, err = s.reserveVersion(ctx, req, src)
		if err == nil || !store.IsUniqueViolation(err) || attempt == createRetries-1 {
			break
		}
	}
	if err != nil {
		return ModelVersion{}, err
	}
	stopKeepAlive := s.keepAlive(ctx, modelID, version)
	location, digest, manifest, err := s.storeFiles(ctx, src, modelID, version)
	stopKeepAlive()
	if err == nil {
		err = s.db.Batch(ctx, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, s.db.Q(`UPDATE model_versions SET status = ?, storage_location = ?, manifest = ?, digest = ?
				WHERE model_id = ? AND version = ? AND status = ?`), StatusReady, location, manifest, digest, modelID, version, StatusPending)
			if err != nil {
				return err
			}
			// RecoverPending fails a registration whose heartbeats stopped
			// reaching the database, and removes its files.
			if n, err := res.RowsAffected(); err != nil || n == 0 {
				return errs.New(errs.Internal, "Model Version (name=%s, version=%d): the registration was given up as abandoned while its files were copied; register again", req.Name, version)
			}
			// Recorded when READY: a registration that fails leaves no
			// version behind, so there is nothing to record for it.
			return s.record(ctx, tx, "model_version.create", audit.ModelVersion(req.Name, version), nil, map[string]any{
				"source": req.Source, "run_id": req.RunID, "digest": digest, "status": StatusReady,
				"description": req.Description, "tags": tagMap(req.Tags)})
		})
	}
	if err != nil {
		// Undo the reservation so a failed registration leaves no trace.
		if derr := s.db.Batch(context.WithoutCancel(ctx), func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, s.db.Q(`DELETE FROM model_versions WHERE model_id = ? AND version = ?`), modelID, version)
			return err
		}); derr != nil {
			s.Log.Error("registry: could not remove a failed model version", "name", req.Name, "version", version, "err", derr)
		}
		s.removeFiles(ctx, versionDir(modelID, version))
		return ModelVersion{}, err
	}
	return s.GetModelVersion(ctx, req.Name, version)
}

// reserveVersion inserts the next version of the model as
// PENDING_REGISTRATION, so its number is taken while its files are copied,
// with the run or version its source resolved to.
func (s *Service) reserveVersion(ctx context.Context, req CreateModelVersionRequest, src source) (int64, int64, error) {
	var id, version int64
	err := s.db.Batch(ctx, func(tx *sql.Tx) error {
		var err error
		if id, err = s.modelID(ctx, tx, req.Name); err != nil {
			return err
		}
		// Updating the model row first takes its row lock on PostgreSQL, so
		// concurrent reservations for one model take turns instead of
		// reading the same MAX(version) and colliding.
		now := s.nowMillis()
		if _, err := tx.ExecContext(ctx, s.db.Q(`UPDATE registered_models SET last_updated_time = ? WHERE model_id = ?`), now, id); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, s.db.Q(`SELECT COALESCE(MAX(version), 0) + 1 FROM model_versions WHERE model_id = ?`), id).Scan(&version); err != nil {
			return err
		}
		var user any
		if req.UserID != "" {
			user = req.UserID
		}
		var srcRun, srcModel, srcVersion any
		if src.runID != "" {
			srcRun = src.runID
		}
		if src.modelID != 0 {
			srcModel, srcVersion = src.modelID, src.version
		}
		if _, err := tx.ExecContext(ctx, s.db.Q(`INSERT INTO model_versions
			(model_id, version, creation_time, last_updated_time, description, user_id, current_stage, source, run_id, run_link, status, storage_location,
			source_run_id, source_model_id, source_version)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', ?, ?, ?)`),
			id, version, now, now, req.Description, user, StageNone, req.Source, req.RunID, req.RunLink, StatusPending,
			srcRun, srcModel, srcVersion); err != nil {
			return err
		}
		for _, t := range req.Tags {
			if _, err := tx.ExecContext(ctx, s.db.Q(`INSERT INTO model_version_tags (model_id, version, key, value) VALUES (?, ?, ?, ?)
				ON CONFLICT (model_id, version, key) DO UPDATE SET value = excluded.value`), id, version, t.Key, t.Value); err != nil {
				return err
			}
		}
		return nil
	})
	return id, version, err
}

const versionColumns = `mv.model_id, rm.name, mv.version, mv.creation_time, mv.last_updated_time, mv.description, mv.user_id,
	mv.current_stage, mv.source, mv.run_id, mv.run_link, mv.status, mv.status_message, mv.storage_location, mv.digest`

func scanVersion(row interface{ Scan(...any) error }) (ModelVersion, error) {
	var v ModelVersion
	var desc, user, runID, runLink, msg sql.NullString
	err := row.Scan(&v.modelID, &v.Name, &v.Version, &v.CreationTime, &v.LastUpdatedTime, &desc, &user,
		&v.CurrentStage, &v.Source, &runID, &runLink, &v.Status, &msg, &v.StorageLocation, &v.Digest)
	if desc.Valid {
		v.Description = &desc.String
	}
	if user.Valid {
		v.UserID = &user.String
	}
	if runID.Valid {
		v.RunID = &runID.String
	}
	if runLink.Valid {
		v.RunLink = &runLink.String
	}
	v.StatusMessage = msg.String
	return v, err
}

// versionRow reads a live (not deleted) version inside a transaction.
func (s *Service) versionRow(ctx context.Context, q queryer, name string, version int64) (ModelVersion, error) {
	if err := validateName("name", name); err != nil {
		return ModelVersion{}, err
	}
	v, err := scanVersion(q.QueryRowContext(ctx, s.db.Q(`SELECT `+versionColumns+` FROM model_versions mv
		JOIN registered_models rm ON rm.model_id = mv.model_id
		WHERE rm.name = ? AND mv.version = ? AND mv.current_stage <> ?`), name, version, stageDeleted))
	if errors.Is(err, sql.ErrNoRows) {
		return ModelVersion{}, versionNotFound(name, version)
	}
	return v, err
}

// loadVersions reads versions matching where (over mv and rm) with their
// tags, and their aliases when withAliases is set.
func (s *Service) loadVersions(ctx context.Context, where string, args []any, withAliases bool) ([]ModelVersion, error) {
	var out []ModelVersion
	err := s.db.EachRow(ctx, `SELECT `+versionColumns+` FROM model_versions mv JOIN registered_models rm ON rm.model_id = mv.model_id WHERE `+where, args, func(rows *sql.Rows) error {
		v, err := scanVersion(rows)
		out = append(out, v)
		return err
	})
	if err != nil || len(out) == 0 {
		return out, err
	}
	type key struct{ id, version int64 }
	index := make(map[key]int, len(out))
	ids := map[int64]bool{}
	var idList []int64
	for i, v := range out {
		index[key{v.modelID, v.Version}] = i
		if !ids[v.modelID] {
			ids[v.modelID] = true
			idList = append(idList, v.modelID)
		}
	}
	for start := 0; start < len(idList); start += 500 {
		part := idList[start:min(start+500, len(idList))]
		in := `(` + placeholders(len(part)) + `)`
		err := s.db.EachRow(ctx, `SELECT model_id, version, key, value FROM model_version_tags WHERE model_id IN `+in+` ORDER BY model_id, version, key`, int64Args(part), func(rows *sql.Rows) error {
			var k key
			var t Tag
			if err := rows.Scan(&k.id, &k.version, &t.Key, &t.Value); err != nil {
				return err
			}
			if i, ok := index[k]; ok {
				out[i].Tags = append(out[i].Tags, t)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if !withAliases {
			continue
		}
		err = s.db.EachRow(ctx, `SELECT model_id, version, alias FROM registered_model_aliases WHERE model_id IN `+in+` ORDER BY model_id, alias`, int64Args(part), func(rows *sql.Rows) error {
			var k key
			var a string
			if err := rows.Scan(&k.id, &k.version, &a); err != nil {
				return err
			}
			if i, ok := index[k]; ok {
				out[i].Aliases = append(out[i].Aliases, a)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// GetModelVersion returns a live version with its tags and aliases.
func (s *Service) GetModelVersion(ctx context.Context, name string, version int64) (ModelVersion, error) {
	if err := validateName("name", name); err != nil {
		return ModelVersion{}, err
	}
	vs, err := s.loadVersions(ctx, `rm.name = ? AND mv.version = ? AND mv.current_stage <> ?`, []any{name, version, stageDeleted}, true)
	if err != nil {
		return ModelVersion{}, err
	}
	if len(vs) == 0 {
		return ModelVersion{}, versionNotFound(name, version)
	}
	return vs[0], nil
}

// UpdateModelVersion sets a version's description; nil clears it, as
// MLflow does when the field is left out.
func (s *Service) UpdateModelVersion(ctx context.Context, name string, version int64, description *string) (ModelVersion, error) {
	if description != nil {
		if err := checkText("description", *description, MaxDescription); err != nil {
			return ModelVersion{}, err
		}
	}
	err := s.db.Batch(ctx, func(tx *sql.Tx) error {
		v, err := s.versionRow(ctx, tx, name, version)
		if err != nil {
			return err
		}
		if _, err = tx.ExecContext(ctx, s.db.Q(`UPDATE model_versions SET description = ?, last_updated_time = ? WHERE model_id = ? AND version = ?`),
			description, s.nowMillis(), v.modelID, version); err != nil {
			return err
		}
		return s.record(ctx, tx, "model_version.update", audit.ModelVersion(name, version),
			map[string]any{"description": v.Description}, map[string]any{"description": description})
	})
	if err != nil {
		return ModelVersion{}, err
	}
	return s.GetModelVersion(ctx, name, version)
}

// TransitionStage moves a version to stage. With archiveExisting, the
// other versions in that stage (Staging or Production only) move to
// Archived in the same transaction. When the model's promotion policy has
// gates for the stage, the version must pass them all, as for SetAlias; a
// version already in the stage is not checked again.
func (s *Service) TransitionStage(ctx context.Context, name string, version int64, stage string, archiveExisting bool) (ModelVersion, error) {
	canon, err := CanonicalStage(stage)
	if err != nil {
		return ModelVersion{}, err
	}
	if archiveExisting && canon != StageStaging && canon != StageProduction {
		return ModelVersion{}, errs.Invalid("Model version transition cannot archive existing model versions because '%s' is not an Active stage. Valid stages are ['Staging', 'Production']", stage)
	}
	err = s.db.Batch(ctx, func(tx *sql.Tx) error {
		v, err := s.versionRow(ctx, tx, name, version)
		if err != nil {
			return err
		}
		if v.CurrentStage != canon && canon != StageNone {
			if err := s.enforce(ctx, tx, v, StageTarget(canon)); err != nil {
				return err
			}
		}
		now := s.nowMillis()
		if archiveExisting {
			var archived []int64
			if err := eachRow(ctx, tx, s.db.Q(`SELECT version FROM model_versions WHERE model_id = ? AND version <> ? AND current_stage = ? ORDER BY version`),
				[]any{v.modelID, version, canon}, func(rows *sql.Rows) error {
					var n int64
					err := rows.Scan(&n)
					archived = append(archived, n)
					return err
				}); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, s.db.Q(`UPDATE model_versions SET current_stage = ?, last_updated_time = ?
				WHERE model_id = ? AND version <> ? AND current_stage = ?`), StageArchived, now, v.modelID, version, canon); err != nil {
				return err
			}
			for _, n := range archived {
				if err := s.record(ctx, tx, "model_version.transition_stage", audit.ModelVersion(name, n),
					map[string]any{"stage": canon}, map[string]any{"stage": StageArchived, "archived_for": version}); err != nil {
					return err
				}
			}
		}
		if _, err := tx.ExecContext(ctx, s.db.Q(`UPDATE model_versions SET current_stage = ?, last_updated_time = ? WHERE model_id = ? AND version = ?`),
			canon, now, v.modelID, version); err != nil {
			return err
		}
		if err := s.record(ctx, tx, "model_version.transition_stage", audit.ModelVersion(name, version),
			map[string]any{"stage": v.CurrentStage}, map[string]any{"stage": canon}); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.db.Q(`UPDATE registered_models SET last_updated_time = ? WHERE model_id = ?`), now, v.modelID)
		return err
	})
	if err != nil {
		return ModelVersion{}, err
	}
	return s.GetModelVersion(ctx, name, version)
}

// DeleteModelVersion deletes a version and its aliases, then its files.
// Its row stays, redacted, as MLflow keeps it, so the number is not reused.
func (s *Service) DeleteModelVersion(ctx context.Context, name string, version int64) error {
	var id int64
	err := s.db.Batch(ctx, func(tx *sql.Tx) error {
		v, err := s.versionRow(ctx, tx, name, version)
		if err != nil {
			return err
		}
		id = v.modelID
		before, err := s.versionState(ctx, tx, v)
		if err != nil {
			return err
		}
		if err := s.record(ctx, tx, "model_version.delete", audit.ModelVersion(name, version), before, nil); err != nil {
			return err
		}
		now := s.nowMillis()
		for _, q := range []string{
			`DELETE FROM registered_model_aliases WHERE model_id = ? AND version = ?`,
			`DELETE FROM model_version_tags WHERE model_id = ? AND version = ?`,
		} {
			if _, err := tx.ExecContext(ctx, s.db.Q(q), id, version); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, s.db.Q(`UPDATE model_versions SET current_stage = ?, last_updated_time = ?, description = NULL,
			user_id = NULL, source = 'REDACTED-SOURCE-PATH', run_id = 'REDACTED-RUN-ID', run_link = 'REDACTED-RUN-LINK',
			source_run_id = NULL, source_model_id = NULL, source_version = NULL,
			status_message = NULL, manifest = '', digest = '' WHERE model_id = ? AND version = ?`), stageDeleted, now, id, version); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.db.Q(`UPDATE registered_models SET last_updated_time = ? WHERE model_id = ?`), now, id)
		return err
	})
	if err != nil {
		return err
	}
	s.removeFiles(ctx, versionDir(id, version))
	return nil
}

// SetModelVersionTag sets a tag on a live version.
func (s *Service) SetModelVersionTag(ctx context.Context, name string, version int64, tag Tag) error {
	if err := validateTag(tag, ""); err != nil {
		return err
	}
	return s.db.Batch(ctx, func(tx *sql.Tx) error {
		v, err := s.versionRow(ctx, tx, name, version)
		if err != nil {
			return err
		}
		old, err := s.versionTagValue(ctx, tx, v.modelID, version, tag.Key)
		if err != nil {
			return err
		}
		if _, err = tx.ExecContext(ctx, s.db.Q(`INSERT INTO model_version_tags (model_id, version, key, value) VALUES (?, ?, ?, ?)
			ON CONFLICT (model_id, version, key) DO UPDATE SET value = excluded.value`), v.modelID, version, tag.Key, tag.Value); err != nil {
			return err
		}
		return s.record(ctx, tx, "model_version.set_tag", audit.ModelVersion(name, version), tagState(tag.Key, old), tagState(tag.Key, &tag.Value))
	})
}

// DeleteModelVersionTag removes a tag; a missing tag is not an error.
func (s *Service) DeleteModelVersionTag(ctx context.Context, name string, version int64, key string) error {
	if err := validateTag(Tag{Key: key}, ""); err != nil {
		return err
	}
	return s.db.Batch(ctx, func(tx *sql.Tx) error {
		v, err := s.versionRow(ctx, tx, name, version)
		if err != nil {
			return err
		}
		old, err := s.versionTagValue(ctx, tx, v.modelID, version, key)
		if err != nil || old == nil {
			return err
		}
		if _, err = tx.ExecContext(ctx, s.db.Q(`DELETE FROM model_version_tags WHERE model_id = ? AND version = ? AND key = ?`), v.modelID, version, key); err != nil {
			return err
		}
		return s.record(ctx, tx, "model_version.delete_tag", audit.ModelVersion(name, version), tagState(key, old), nil)
	})
}

// DownloadURI is where a version's files are served from.
func (s *Service) DownloadURI(ctx context.Context, name string, version int64) (string, error) {
	v, err := s.versionRow(ctx, s.db.Read, name, version)
	if err != nil {
		return "", err
	}
	if v.Status != StatusReady {
		return "", errs.New(errs.FailedPrecondition, "Model Version (name=%s, version=%d) is %s, not READY", name, version, v.Status)
	}
	return v.StorageLocation, nil
}

// SearchModelVersionsRequest mirrors MLflow's SearchModelVersions.
type SearchModelVersionsRequest struct {
	Filter     string
	MaxResults int64
	OrderBy    []string
	PageToken  string
}

// SearchModelVersions returns one page of live versions in order.
func (s *Service) SearchModelVersions(ctx context.Context, req SearchModelVersionsRequest) ([]ModelVersion, string, error) {
	limit, err := pageLimit(req.MaxResults, MaxSearchVersions, MaxSearchVersions)
	if err != nil {
		return nil, "", err
	}
	f, err := search.ParseModelVersionFilter(req.Filter)
	if err != nil {
		return nil, "", err
	}
	var orders []search.OrderBy
	for _, o := range req.OrderBy {
		ob, err := search.ParseModelVersionOrderBy(o)
		if err != nil {
			return nil, "", err
		}
		orders = append(orders, ob)
	}
	compiled, err := search.CompileModelVersions(f, orders, s.dialect())
	if err != nil {
		return nil, "", err
	}
	offset, err := search.DecodePageToken(req.PageToken)
	if err != nil {
		return nil, "", err
	}
	var b strings.Builder
	b.WriteString(`SELECT mv.model_id, mv.version FROM model_versions mv JOIN registered_models rm ON rm.model_id = mv.model_id WHERE mv.current_stage <> ?`)
	args := []any{stageDeleted}
	if compiled.Where != "" {
		b.WriteString(` AND (` + compiled.Where + `)`)
		args = append(args, compiled.WhereArgs...)
	}
	b.WriteString(` ORDER BY ` + compiled.OrderBy + ` LIMIT ? OFFSET ?`)
	args = append(args, limit+1, offset)
	type key struct{ id, version int64 }
	var keys []key
	err = s.db.EachRow(ctx, b.String(), args, func(rows *sql.Rows) error {
		var k key
		keys = append(keys, k)
		return rows.Scan(&keys[len(keys)-1].id, &keys[len(keys)-1].version)
	})
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(keys) > limit {
		keys = keys[:limit]
		next = search.EncodePageToken(offset + limit)
	}
	if len(keys) == 0 {
		return nil, next, nil
	}
	// Load the page by model, then restore the search order.
	out := make([]ModelVersion, 0, len(keys))
	pos := make(map[key]int, len(keys))
	for i, k := range keys {
		pos[k] = i
	}
	for start := 0; start < len(keys); start += 400 {
		part := keys[start:min(start+400, len(keys))]
		var conds []string
		var cargs []any
		for _, k := range part {
			conds = append(conds, `(mv.model_id = ? AND mv.version = ?)`)
			cargs = append(cargs, k.id, k.version)
		}
		vs, err := s.loadVersions(ctx, strings.Join(conds, ` OR `), cargs, true)
		if err != nil {
			return nil, "", err
		}
		out = append(out, vs...)
	}
	sorted := make([]ModelVersion, len(out))
	for _, v := range out {
		sorted[pos[key{v.modelID, v.Version}]] = v
	}
	return sorted, next, nil
}
