package tracking

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/slipwayml/slipway/internal/errs"
)

// LogBatch records metrics, params and tags for an active run in one
// durable write. Everything is validated before anything is written, so a
// refused batch changes nothing.
func (s *Service) LogBatch(ctx context.Context, runID string, metrics []Metric, params []Param, tags []Tag) error {
	if err := ValidateRunID(runID); err != nil {
		return err
	}
	if err := validateBatch(metrics, params, tags); err != nil {
		return err
	}
	if len(metrics)+len(params)+len(tags) == 0 {
		// Still an error for a missing run, as in MLflow.
		_, err := s.readRunInfo(ctx, s.db.Read, runID)
		return err
	}
	w := prepareMetrics(runID, metrics)
	return s.db.Batch(ctx, func(tx *sql.Tx) error {
		if err := s.checkRunActive(ctx, tx, runID); err != nil {
			return err
		}
		if err := s.insertParams(ctx, tx, runID, params); err != nil {
			return err
		}
		if err := s.upsertTags(ctx, tx, runID, tags); err != nil {
			return err
		}
		return s.insertMetrics(ctx, tx, runID, w)
	})
}

// LogMetric records one metric point.
func (s *Service) LogMetric(ctx context.Context, runID string, m Metric) error {
	if err := validateMetric(m, ""); err != nil {
		return err
	}
	return s.LogBatch(ctx, runID, []Metric{m}, nil, nil)
}

// LogParam records a param; a param is immutable once logged.
func (s *Service) LogParam(ctx context.Context, runID string, p Param) error {
	if err := validateParam(p, ""); err != nil {
		return err
	}
	return s.LogBatch(ctx, runID, nil, []Param{p}, nil)
}

// SetTag sets or replaces a run tag.
func (s *Service) SetTag(ctx context.Context, runID string, t Tag) error {
	if err := validateTag(t, ""); err != nil {
		return err
	}
	return s.LogBatch(ctx, runID, nil, nil, []Tag{t})
}

// DeleteTag removes a run tag; a missing tag is NotFound.
func (s *Service) DeleteTag(ctx context.Context, runID, key string) error {
	if err := ValidateRunID(runID); err != nil {
		return err
	}
	if key == "" {
		return MissingValue("key")
	}
	return s.db.Batch(ctx, func(tx *sql.Tx) error {
		if err := s.checkRunActive(ctx, tx, runID); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, s.db.Q(`DELETE FROM tags WHERE run_uuid = ? AND key = ?`), runID, key)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errs.NotFoundf("No tag with name: %s in run with id %s", key, runID)
		}
		return nil
	})
}

func (s *Service) insertParams(ctx context.Context, tx *sql.Tx, runID string, params []Param) error {
	if len(params) == 0 {
		return nil
	}
	args := make([]any, 0, len(params)+1)
	args = append(args, runID)
	for _, p := range params {
		args = append(args, p.Key)
	}
	existing := make(map[string]string, len(params))
	rows, err := tx.QueryContext(ctx, s.db.Q(`SELECT key, value FROM params WHERE run_uuid = ? AND key IN (`+placeholders(len(params))+`)`), args...)
	if err != nil {
		return err
	}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			rows.Close()
			return err
		}
		existing[k] = v
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	fresh := args[:0]
	added := make(map[string]bool, len(params))
	for _, p := range params {
		if old, ok := existing[p.Key]; ok {
			if old != p.Value {
				return errs.Invalid("Changing param values is not allowed. Param with key='%s' was already logged with value='%s' for run ID='%s'. Attempted logging new value '%s'.", p.Key, old, runID, p.Value)
			}
			continue
		}
		if added[p.Key] {
			continue
		}
		added[p.Key] = true
		fresh = append(fresh, runID, p.Key, p.Value)
	}
	if len(fresh) == 0 {
		return nil
	}
	_, err = tx.ExecContext(ctx, s.db.Q(`INSERT INTO params (run_uuid, key, value) VALUES `+tuples(len(fresh)/3, 3)), fresh...)
	return err
}

// upsertTags sets tags; the mlflow.runName tag also renames the run, since
// MLflow keeps the two equal.
func (s *Service) upsertTags(ctx context.Context, tx *sql.Tx, runID string, tags []Tag) error {
	if len(tags) == 0 {
		return nil
	}
	// Last write wins within a batch, and a multi-row upsert may not touch
	// one key twice.
	last := make(map[string]int, len(tags))
	for i, t := range tags {
		last[t.Key] = i
	}
	args := make([]any, 0, 3*len(last))
	for i, t := range tags {
		if last[t.Key] != i {
			continue
		}
		args = append(args, runID, t.Key, t.Value)
		if t.Key == TagRunName {
			if _, err := tx.ExecContext(ctx, s.db.Q(`UPDATE runs SET name = ? WHERE run_uuid = ?`), t.Value, runID); err != nil {
				return err
			}
		}
	}
	_, err := tx.ExecContext(ctx, s.db.Q(`INSERT INTO tags (run_uuid, key, value) VALUES `+tuples(len(args)/3, 3)+`
		ON CONFLICT (run_uuid, key) DO UPDATE SET value = excluded.value`), args...)
	return err
}

// newer orders points the way MLflow picks a run's latest metric value.
func newer(a, b Metric) bool {
	if a.Step != b.Step {
		return a.Step > b.Step
	}
	if a.Timestamp != b.Timestamp {
		return a.Timestamp > b.Timestamp
	}
	return a.Value > b.Value
}

// tuples renders "(?, ?), (?, ?)" for rows rows of width values.
func tuples(rows, width int) string {
	one := "(" + placeholders(width) + ")"
	var b strings.Builder
	b.Grow(rows * (len(one) + 2))
	for i := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(one)
	}
	return b.String()
}

// LogInputs records the datasets a run consumed. A dataset is stored once per
// experiment by (name, digest); runs link to it.
func (s *Service) LogInputs(ctx context.Context, runID string, inputs []DatasetInput) error {
	if err := ValidateRunID(runID); err != nil {
		return err
	}
	for i, in := range inputs {
		if err := validateDatasetInput(in, i); err != nil {
			return err
		}
	}
	return s.db.Batch(ctx, func(tx *sql.Tx) error {
		if err := s.checkRunActive(ctx, tx, runID); err != nil {
			return err
		}
		var expID int64
		if err := tx.QueryRowContext(ctx, s.db.Q(`SELECT experiment_id FROM runs WHERE run_uuid = ?`), runID).Scan(&expID); err != nil {
			return err
		}
		for _, in := range inputs {
			d := in.Dataset
			var dsID string
			err := tx.QueryRowContext(ctx, s.db.Q(`SELECT dataset_uuid FROM datasets WHERE experiment_id = ? AND name = ? AND digest = ?`),
				expID, d.Name, d.Digest).Scan(&dsID)
			if err == sql.ErrNoRows {
				dsID = newID()
				_, err = tx.ExecContext(ctx, s.db.Q(`INSERT INTO datasets (dataset_uuid, experiment_id, name, digest, source_type, source, schema, profile)
					VALUES (?, ?, ?, ?, ?, ?, ?, ?)`), dsID, expID, d.Name, d.Digest, d.SourceType, d.Source, d.Schema, d.Profile)
			}
			if err != nil {
				return fmt.Errorf("dataset %s: %w", d.Name, err)
			}
			if _, err := tx.ExecContext(ctx, s.db.Q(`INSERT INTO run_inputs (run_uuid, dataset_uuid) VALUES (?, ?) ON CONFLICT DO NOTHING`), runID, dsID); err != nil {
				return err
			}
			for _, t := range in.Tags {
				if _, err := tx.ExecContext(ctx, s.db.Q(`INSERT INTO run_input_tags (run_uuid, dataset_uuid, key, value) VALUES (?, ?, ?, ?)
					ON CONFLICT (run_uuid, dataset_uuid, key) DO UPDATE SET value = excluded.value`), runID, dsID, t.Key, t.Value); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// TagLoggedModels holds the MLmodel descriptions logged to a run.
const TagLoggedModels = "mlflow.log-model.history"

// RecordLoggedModel appends an MLmodel description (JSON) to the run's
// mlflow.log-model.history tag. The tag is written by the server, so the
// client tag-length limit does not apply to it.
func (s *Service) RecordLoggedModel(ctx context.Context, runID, modelJSON string) error {
	if err := ValidateRunID(runID); err != nil {
		return err
	}
	var model map[string]any
	if err := json.Unmarshal([]byte(modelJSON), &model); err != nil {
		return invalidValue("model_json", modelJSON, "must be a JSON object")
	}
	return s.db.Batch(ctx, func(tx *sql.Tx) error {
		if err := s.checkRunActive(ctx, tx, runID); err != nil {
			return err
		}
		var history []any
		var prev string
		err := tx.QueryRowContext(ctx, s.db.Q(`SELECT value FROM tags WHERE run_uuid = ? AND key = ?`), runID, TagLoggedModels).Scan(&prev)
		if err != nil && err != sql.ErrNoRows {
			return err
		}
		if prev != "" {
			json.Unmarshal([]byte(prev), &history)
		}
		value, err := json.Marshal(append(history, model))
		if err != nil {
			return err
		}
		return s.upsertTags(ctx, tx, runID, []Tag{{Key: TagLoggedModels, Value: string(value)}})
	})
}
