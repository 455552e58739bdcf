package client

import (
	"context"
	"iter"
	"net/url"
)

// CreateExperimentRequest names a new experiment. ArtifactLocation is
// normally left empty: the server then stores the experiment's artifacts
// itself and serves them through its artifact proxy.
type CreateExperimentRequest struct {
	Name             string `json:"name"`
	ArtifactLocation string `json:"artifact_location,omitempty"`
	Tags             []Tag  `json:"tags,omitempty"`
}

// CreateExperiment creates an experiment and returns its id.
func (c *Client) CreateExperiment(ctx context.Context, req CreateExperimentRequest) (string, error) {
	var out struct {
		ID string `json:"experiment_id"`
	}
	if err := c.call(ctx, "POST", "experiments/create", nil, req, &out); err != nil {
		return "", err
	}
	return out.ID, nil
}

// GetExperiment returns the experiment with id, deleted or not.
func (c *Client) GetExperiment(ctx context.Context, id string) (*Experiment, error) {
	var out struct {
		Experiment Experiment `json:"experiment"`
	}
	if err := c.call(ctx, "GET", "experiments/get", url.Values{"experiment_id": {id}}, nil, &out); err != nil {
		return nil, err
	}
	return &out.Experiment, nil
}

// GetExperimentByName returns the experiment called name.
func (c *Client) GetExperimentByName(ctx context.Context, name string) (*Experiment, error) {
	var out struct {
		Experiment Experiment `json:"experiment"`
	}
	if err := c.call(ctx, "GET", "experiments/get-by-name", url.Values{"experiment_name": {name}}, nil, &out); err != nil {
		return nil, err
	}
	return &out.Experiment, nil
}

// SearchExperimentsRequest selects experiments. Filter uses MLflow's
// grammar ("name LIKE 'churn%' AND tags.team = 'risk'"); OrderBy entries
// look like "last_update_time DESC". MaxResults is the page size (the
// server's default when 0).
type SearchExperimentsRequest struct {
	Filter     string   `json:"filter,omitempty"`
	OrderBy    []string `json:"order_by,omitempty"`
	MaxResults int64    `json:"max_results,omitempty"`
	PageToken  string   `json:"page_token,omitempty"`
	ViewType   ViewType `json:"view_type,omitempty"`
}

// ExperimentsPage is one page of search results; NextPageToken is empty on
// the last page.
type ExperimentsPage struct {
	Experiments   []Experiment `json:"experiments"`
	NextPageToken string       `json:"next_page_token,omitempty"`
}

// SearchExperiments returns one page of experiments.
func (c *Client) SearchExperiments(ctx context.Context, req SearchExperimentsRequest) (*ExperimentsPage, error) {
	var out ExperimentsPage
	if err := c.call(ctx, "POST", "experiments/search", nil, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// IterExperiments yields every experiment req selects, fetching pages as the
// loop asks for them, starting at req.PageToken. It stops after yielding
// the first error.
func (c *Client) IterExperiments(ctx context.Context, req SearchExperimentsRequest) iter.Seq2[Experiment, error] {
	return paginate(req.PageToken, func(token string) ([]Experiment, string, error) {
		req.PageToken = token
		page, err := c.SearchExperiments(ctx, req)
		if err != nil {
			return nil, "", err
		}
		return page.Experiments, page.NextPageToken, nil
	})
}

// SearchAllExperiments returns every experiment req selects, following page
// tokens.
func (c *Client) SearchAllExperiments(ctx context.Context, req SearchExperimentsRequest) ([]Experiment, error) {
	return collect(c.IterExperiments(ctx, req))
}

// UpdateExperiment renames an experiment.
func (c *Client) UpdateExperiment(ctx context.Context, id, newName string) error {
	return c.call(ctx, "POST", "experiments/update", nil, map[string]string{"experiment_id": id, "new_name": newName}, nil)
}

// DeleteExperiment marks an experiment and its runs deleted; RestoreExperiment
// undoes it.
func (c *Client) DeleteExperiment(ctx context.Context, id string) error {
	return c.call(ctx, "POST", "experiments/delete", nil, map[string]string{"experiment_id": id}, nil)
}

// RestoreExperiment brings back a deleted experiment.
func (c *Client) RestoreExperiment(ctx context.Context, id string) error {
	return c.call(ctx, "POST", "experiments/restore", nil, map[string]string{"experiment_id": id}, nil)
}

// SetExperimentTag sets (or overwrites) a tag on an experiment.
func (c *Client) SetExperimentTag(ctx context.Context, id, key, value string) error {
	return c.call(ctx, "POST", "experiments/set-experiment-tag", nil,
		map[string]string{"experiment_id": id, "key": key, "value": value}, nil)
}

// DeleteExperimentTag removes a tag from an experiment.
func (c *Client) DeleteExperimentTag(ctx context.Context, id, key string) error {
	return c.call(ctx, "POST", "experiments/delete-experiment-tag", nil,
		map[string]string{"experiment_id": id, "key": key}, nil)
}

// paginate turns a page fetcher into an iterator over items. A server that
// hands back the token it was given would loop forever; that ends with an
// error instead.
func paginate[T any](token string, fetch func(token string) ([]T, string, error)) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for {
			items, next, err := fetch(token)
			if err != nil {
				var zero T
				yield(zero, err)
				return
			}
			for _, it := range items {
				if !yield(it, nil) {
					return
				}
			}
			if next == "" {
				return
			}
			if next == token {
				var zero T
				yield(zero, errRepeatedToken)
				return
			}
			token = next
		}
	}
}

func collect[T any](seq iter.Seq2[T, error]) ([]T, error) {
	var out []T
	for it, err := range seq {
		if err != nil {
			return nil, err
		}
		out = append(out, it)
	}
	return out, nil
}
