package tracking

import (
	"context"
	"database/sql"
	"strconv"
	"strings"

	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/store"
	"github.com/slipwayml/slipway/internal/tracking/search"
)

// CreateExperiment creates an experiment and returns its id.
func (s *Service) CreateExperiment(ctx context.Context, name, artifactLocation string, tags []Tag) (string, error) {
	if err := validateExperimentName(name); err != nil {
		return "", err
	}
	for i, t := range tags {
		if err := validateTag(t, "tags["+strconv.Itoa(i)+"]."); err != nil {
			return "", err
		}
	}
	if artifactLocation != "" {
		if s.ValidateLocation == nil {
			return "", invalidValue("artifact_location", artifactLocation, "this server stores artifacts itself; leave artifact_location empty")
		}
		loc, err := s.ValidateLocation(artifactLocation)
		if err != nil {
			return "", err
		}
		artifactLocation = loc
	}
	now := s.nowMillis()
	var id int64
	err := s.db.Batch(ctx, func(tx *sql.Tx) error {
		var stage string
		err := tx.QueryRowContext(ctx, s.db.Q(`SELECT lifecycle_stage FROM experiments WHERE name = ?`), name).Scan(&stage)
		switch {
		case err == nil && stage == StageDeleted:
			return errs.New(errs.AlreadyExists, "Experiment '%s' already exists in deleted state. You can restore the experiment, or permanently delete the experiment to use this experiment name again.", name)
		case err == nil:
			return errs.New(errs.AlreadyExists, "Experiment(name=%s) already exists.", name)
		case err != sql.ErrNoRows:
			return err
		}
		if err := tx.QueryRowContext(ctx, s.db.Q(`INSERT INTO experiments
			(name, artifact_location, lifecycle_stage, creation_time, last_update_time)
			VALUES (?, ?, 'active', ?, ?) RETURNING experiment_id`), name, artifactLocation, now, now).Scan(&id); err != nil {
			if store.IsUniqueViolation(err) {
				return errs.New(errs.AlreadyExists, "Experiment(name=%s) already exists.", name)
			}
			return err
		}
		if artifactLocation == "" {
			if _, err := tx.ExecContext(ctx, s.db.Q(`UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?`),
				DefaultArtifactLocation(strconv.FormatInt(id, 10)), id); err != nil {
				return err
			}
		}
		for _, t := range tags {
			if _, err := tx.ExecContext(ctx, s.db.Q(`INSERT INTO experiment_tags (experiment_id, key, value) VALUES (?, ?, ?)
				ON CONFLICT (experiment_id, key) DO UPDATE SET value = excluded.value`), id, t.Key, t.Value); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return strconv.FormatInt(id, 10), nil
}

// parseExperimentID turns a client's id into the store's integer key; ids
// that are not integers cannot exist here.
func parseExperimentID(id string) (int64, error) {
	if err := ValidateExperimentID(id); err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil || n < 0 {
		return 0, errs.NotFoundf("No Experiment with id=%s exists", id)
	}
	return n, nil
}

type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

const experimentColumns = `experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time`

func scanExperiment(row interface{ Scan(...any) error }) (Experiment, error) {
	var e Experiment
	var id int64
	err := row.Scan(&id, &e.Name, &e.ArtifactLocation, &e.LifecycleStage, &e.CreationTime, &e.LastUpdateTime)
	e.ID = strconv.FormatInt(id, 10)
	return e, err
}

// GetExperiment returns an experiment with its tags, in any lifecycle stage.
func (s *Service) GetExperiment(ctx context.Context, id string) (Experiment, error) {
	n, err := parseExperimentID(id)
	if err != nil {
		return Experiment{}, err
	}
	return s.getExperiment(ctx, s.db.Read, n)
}

func (s *Service) getExperiment(ctx context.Context, q queryer, id int64) (Experiment, error) {
	e, err := scanExperiment(q.QueryRowContext(ctx, s.db.Q(`SELECT `+experimentColumns+` FROM experiments WHERE experiment_id = ?`), id))
	if err != nil {
		return e, notFound(err, "No Experiment with id=%d exists", id)
	}
	tags, err := s.experimentTags(ctx, q, []int64{id})
	e.Tags = tags[id]
	return e, err
}

// GetExperimentByName returns the experiment with that exact name.
func (s *Service) GetExperimentByName(ctx context.Context, name string) (Experiment, error) {
	if name == "" {
		return Experiment{}, MissingValue("experiment_name")
	}
	e, err := scanExperiment(s.db.Read.QueryRowContext(ctx, s.db.Q(`SELECT `+experimentColumns+` FROM experiments WHERE name = ?`), name))
	if err != nil {
		return e, notFound(err, "Could not find experiment with name '%s'", name)
	}
	id, _ := strconv.ParseInt(e.ID, 10, 64)
	tags, err := s.experimentTags(ctx, s.db.Read, []int64{id})
	e.Tags = tags[id]
	return e, err
}

func (s *Service) experimentTags(ctx context.Context, q queryer, ids []int64) (map[int64][]Tag, error) {
	out := make(map[int64][]Tag, len(ids))
	for _, chunk := range chunks(len(ids), 500) {
		part := ids[chunk[0]:chunk[1]]
		args := make([]any, len(part))
		for i, id := range part {
			args[i] = id
		}
		rows, err := q.QueryContext(ctx, s.db.Q(`SELECT experiment_id, key, value FROM experiment_tags
			WHERE experiment_id IN (`+placeholders(len(part))+`) ORDER BY experiment_id, key`), args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id int64
			var t Tag
			if err := rows.Scan(&id, &t.Key, &t.Value); err != nil {
				rows.Close()
				return nil, err
			}
			out[id] = append(out[id], t)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// SearchExperimentsRequest mirrors MLflow's SearchExperiments message.
type SearchExperimentsRequest struct {
	Filter     string
	OrderBy    []string
	MaxResults int64
	PageToken  string
	ViewType   ViewType
}

// SearchExperiments returns one page of experiments and the token for the next.
func (s *Service) SearchExperiments(ctx context.Context, req SearchExperimentsRequest) ([]Experiment, string, error) {
	limit, err := maxResults(req.MaxResults, MaxResultsDefault, MaxResultsLimit)
	if err != nil {
		return nil, "", err
	}
	offset, err := search.DecodePageToken(req.PageToken)
	if err != nil {
		return nil, "", err
	}
	filter, err := search.ParseExperimentFilter(req.Filter)
	if err != nil {
		return nil, "", err
	}
	orders := make([]search.OrderBy, 0, len(req.OrderBy))
	for _, o := range req.OrderBy {
		ob, err := search.ParseExperimentOrderBy(o)
		if err != nil {
			return nil, "", err
		}
		orders = append(orders, ob)
	}
	compiled, err := search.CompileExperiments(filter, orders, s.dialect())
	if err != nil {
		return nil, "", err
	}
	var b strings.Builder
	args := append([]any{}, compiled.JoinArgs...)
	b.WriteString(`SELECT e.experiment_id, e.name, e.artifact_location, e.lifecycle_stage, e.creation_time, e.last_update_time FROM experiments e `)
	b.WriteString(compiled.Joins)
	b.WriteString(` WHERE `)
	b.WriteString(stageClause("e", req.ViewType))
	if compiled.Where != "" {
		b.WriteString(` AND (`)
		b.WriteString(compiled.Where)
		b.WriteString(`)`)
		args = append(args, compiled.WhereArgs...)
	}
	b.WriteString(` ORDER BY `)
	b.WriteString(compiled.OrderBy)
	b.WriteString(` LIMIT ? OFFSET ?`)
	args = append(args, limit+1, offset)
	rows, err := s.db.Read.QueryContext(ctx, s.db.Q(b.String()), args...)
	if err != nil {
		return nil, "", err
	}
	var exps []Experiment
	var ids []int64
	for rows.Next() {
		e, err := scanExperiment(rows)
		if err != nil {
			rows.Close()
			return nil, "", err
		}
		exps = append(exps, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, "", err
	}
	next := ""
	if len(exps) > limit {
		exps = exps[:limit]
		next = search.EncodePageToken(offset + limit)
	}
	for _, e := range exps {
		id, _ := strconv.ParseInt(e.ID, 10, 64)
		ids = append(ids, id)
	}
	tags, err := s.experimentTags(ctx, s.db.Read, ids)
	if err != nil {
		return nil, "", err
	}
	for i := range exps {
		exps[i].Tags = tags[ids[i]]
	}
	return exps, next, nil
}

func (s *Service) dialect() search.Dialect {
	if s.db.Dialect == store.Postgres {
		return search.Postgres
	}
	return search.SQLite
}

func stageClause(alias string, v ViewType) string {
	switch v {
	case DeletedOnly:
		return alias + ".lifecycle_stage = 'deleted'"
	case All:
		return alias + ".lifecycle_stage IN ('active', 'deleted')"
	default:
		return alias + ".lifecycle_stage = 'active'"
	}
}

// activeExperiment loads an experiment inside tx and refuses deleted ones.
func (s *Service) activeExperiment(ctx context.Context, tx *sql.Tx, id string) (int64, error) {
	n, err := parseExperimentID(id)
	if err != nil {
		return 0, err
	}
	var stage string
	if err := tx.QueryRowContext(ctx, s.db.Q(`SELECT lifecycle_stage FROM experiments WHERE experiment_id = ?`), n).Scan(&stage); err != nil {
		return 0, notFound(err, "No Experiment with id=%s exists", id)
	}
	if stage != StageActive {
		return 0, errs.Invalid("The experiment %s must be in the 'active' state. Current state is %s.", id, stage)
	}
	return n, nil
}

// UpdateExperiment renames an active experiment.
func (s *Service) UpdateExperiment(ctx context.Context, id, newName string) error {
	if err := validateExperimentName(newName); err != nil {
		return err
	}
	return s.db.Batch(ctx, func(tx *sql.Tx) error {
		n, err := parseExperimentID(id)
		if err != nil {
			return err
		}
		var stage string
		if err := tx.QueryRowContext(ctx, s.db.Q(`SELECT lifecycle_stage FROM experiments WHERE experiment_id = ?`), n).Scan(&stage); err != nil {
			return notFound(err, "No Experiment with id=%s exists", id)
		}
		if stage != StageActive {
			return errs.Invalid("Cannot rename a non-active experiment.")
		}
		_, err = tx.ExecContext(ctx, s.db.Q(`UPDATE experiments SET name = ?, last_update_time = ? WHERE experiment_id = ?`), newName, s.nowMillis(), n)
		if store.IsUniqueViolation(err) {
			return errs.New(errs.AlreadyExists, "Experiment(name=%s) already exists.", newName)
		}
		return err
	})
}

// DeleteExperiment marks an experiment and its active runs deleted. Nothing
// is removed: RestoreExperiment brings both back.
func (s *Service) DeleteExperiment(ctx context.Context, id string) error {
	n, err := parseExperimentID(id)
	if err != nil {
		return err
	}
	now := s.nowMillis()
	return s.db.Batch(ctx, func(tx *sql.Tx) error {
		if _, err := s.getExperiment(ctx, tx, n); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.db.Q(`UPDATE experiments SET lifecycle_stage = 'deleted', last_update_time = ? WHERE experiment_id = ?`), now, n); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.db.Q(`UPDATE runs SET lifecycle_stage = 'deleted', deleted_time = ?, version = version + 1
			WHERE experiment_id = ? AND lifecycle_stage = 'active'`), now, n)
		return err
	})
}

// RestoreExperiment undoes DeleteExperiment, including for the runs that the
// deletion took with it (those deleted at or after the experiment was).
func (s *Service) RestoreExperiment(ctx context.Context, id string) error {
	n, err := parseExperimentID(id)
	if err != nil {
		return err
	}
	return s.db.Batch(ctx, func(tx *sql.Tx) error {
		e, err := s.getExperiment(ctx, tx, n)
		if err != nil {
			return err
		}
		if e.LifecycleStage != StageDeleted {
			return errs.Invalid("Cannot restore an active experiment.")
		}
		if _, err := tx.ExecContext(ctx, s.db.Q(`UPDATE runs SET lifecycle_stage = 'active', deleted_time = NULL, version = version + 1
			WHERE experiment_id = ? AND lifecycle_stage = 'deleted' AND deleted_time >= ?`), n, e.LastUpdateTime); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.db.Q(`UPDATE experiments SET lifecycle_stage = 'active', last_update_time = ? WHERE experiment_id = ?`), s.nowMillis(), n)
		return err
	})
}

// SetExperimentTag sets or replaces a tag on an active experiment.
func (s *Service) SetExperimentTag(ctx context.Context, id string, t Tag) error {
	if err := validateTag(t, ""); err != nil {
		return err
	}
	return s.db.Batch(ctx, func(tx *sql.Tx) error {
		n, err := s.activeExperiment(ctx, tx, id)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.db.Q(`INSERT INTO experiment_tags (experiment_id, key, value) VALUES (?, ?, ?)
			ON CONFLICT (experiment_id, key) DO UPDATE SET value = excluded.value`), n, t.Key, t.Value)
		return err
	})
}

// DeleteExperimentTag removes a tag; a missing tag is NotFound.
func (s *Service) DeleteExperimentTag(ctx context.Context, id, key string) error {
	if key == "" {
		return MissingValue("key")
	}
	return s.db.Batch(ctx, func(tx *sql.Tx) error {
		n, err := s.activeExperiment(ctx, tx, id)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, s.db.Q(`DELETE FROM experiment_tags WHERE experiment_id = ? AND key = ?`), n, key)
		if err != nil {
			return err
		}
		if k, _ := res.RowsAffected(); k == 0 {
			return errs.NotFoundf("No tag with name: %s in experiment with id %s", key, id)
		}
		return nil
	})
}

func placeholders(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.Repeat("?, ", n-1) + "?"
}

// chunks splits [0, n) into half-open ranges of at most size, so IN lists
// stay under both dialects' bound-parameter limits.
func chunks(n, size int) [][2]int {
	var out [][2]int
	for i := 0; i < n; i += size {
		out = append(out, [2]int{i, min(i+size, n)})
	}
	return out
}
