package tracking

import (
	"context"
	"database/sql"
	"strconv"

	"github.com/slipwayml/slipway/internal/errs"
)

// Limits of search-datasets, as in MLflow's search_datasets_impl and its SQL
// store's _search_datasets.
const (
	MaxExperimentsPerDatasetSearch = 20
	MaxDatasetSummaries            = 1000
)

// DatasetSummary is one dataset used by runs of an experiment, with the
// context (the mlflow.data.context input tag, such as "training") it was
// used in; Context is nil for inputs without that tag.
type DatasetSummary struct {
	ExperimentID string
	Name         string
	Digest       string
	Context      *string
}

// SearchDatasets lists the distinct (experiment, dataset, context) triples of
// the dataset inputs logged to runs of experimentIDs, at most
// MaxDatasetSummaries, as MLflow's UI shows them. Datasets no run used are
// left out, as MLflow's inner join leaves them out. The order is by
// experiment, name, digest and context (MLflow's query has none).
func (s *Service) SearchDatasets(ctx context.Context, experimentIDs []string) ([]DatasetSummary, error) {
	if len(experimentIDs) == 0 {
		return nil, errs.Invalid("SearchDatasets request must specify at least one experiment_id.")
	}
	if len(experimentIDs) > MaxExperimentsPerDatasetSearch {
		return nil, errs.Invalid("SearchDatasets request cannot specify more than %d experiment_ids. Received %d experiment_ids.",
			MaxExperimentsPerDatasetSearch, len(experimentIDs))
	}
	var ids []int64
	for _, id := range experimentIDs {
		if err := ValidateExperimentID(id); err != nil {
			return nil, err
		}
		// Experiment ids are numbers here; a well-formed id that is not one
		// names no experiment, as it names none in MLflow's SQL store.
		if n, err := strconv.ParseInt(id, 10, 64); err == nil {
			ids = append(ids, n)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	in, args := inList(ids)
	args = append([]any{TagContext}, args...)
	args = append(args, MaxDatasetSummaries)
	var out []DatasetSummary
	err := s.db.EachRow(ctx, `SELECT DISTINCT d.experiment_id, d.name, d.digest, t.value
		FROM datasets d
		JOIN run_inputs i ON i.dataset_uuid = d.dataset_uuid
		LEFT JOIN run_input_tags t ON t.run_uuid = i.run_uuid AND t.dataset_uuid = i.dataset_uuid AND t.key = ?
		WHERE d.experiment_id IN (`+in+`)
		ORDER BY d.experiment_id, d.name, d.digest, t.value NULLS FIRST
		LIMIT ?`, args, func(rows *sql.Rows) error {
		var d DatasetSummary
		var exp int64
		var context sql.NullString
		if err := rows.Scan(&exp, &d.Name, &d.Digest, &context); err != nil {
			return err
		}
		d.ExperimentID = strconv.FormatInt(exp, 10)
		if context.Valid {
			d.Context = &context.String
		}
		out = append(out, d)
		return nil
	})
	return out, err
}
