package client

import (
	"context"
	"iter"
	"net/url"
	"strconv"
)

// Model version stages (MLflow's legacy stage workflow).
const (
	StageNone       = "None"
	StageStaging    = "Staging"
	StageProduction = "Production"
	StageArchived   = "Archived"
)

// RegisteredModel is a named model in the registry. LatestVersions holds
// the newest version in each stage.
type RegisteredModel struct {
	Name                 string         `json:"name"`
	CreationTimestamp    int64          `json:"creation_timestamp"`
	LastUpdatedTimestamp int64          `json:"last_updated_timestamp"`
	Description          string         `json:"description,omitempty"`
	LatestVersions       []ModelVersion `json:"latest_versions,omitempty"`
	Tags                 []Tag          `json:"tags,omitempty"`
	Aliases              []ModelAlias   `json:"aliases,omitempty"`
}

// ModelAlias names a version of a registered model ("champion" -> "3").
type ModelAlias struct {
	Alias   string `json:"alias"`
	Version string `json:"version"`
}

// ModelVersion is one registered version of a model. Version is a decimal
// string, as on the wire. On Slipway a version's files are copied into
// registry storage when it is created, so Source may be deleted afterwards.
type ModelVersion struct {
	Name                 string   `json:"name"`
	Version              string   `json:"version"`
	CreationTimestamp    int64    `json:"creation_timestamp"`
	LastUpdatedTimestamp int64    `json:"last_updated_timestamp"`
	UserID               string   `json:"user_id,omitempty"`
	CurrentStage         string   `json:"current_stage"`
	Description          string   `json:"description,omitempty"`
	Source               string   `json:"source"`
	RunID                string   `json:"run_id,omitempty"`
	Status               string   `json:"status"`
	StatusMessage        string   `json:"status_message,omitempty"`
	Tags                 []Tag    `json:"tags,omitempty"`
	RunLink              string   `json:"run_link,omitempty"`
	Aliases              []string `json:"aliases,omitempty"`
}

// CreateRegisteredModel registers a new, empty model name.
func (c *Client) CreateRegisteredModel(ctx context.Context, name, description string, tags ...Tag) (*RegisteredModel, error) {
	var out struct {
		Model RegisteredModel `json:"registered_model"`
	}
	in := map[string]any{"name": name, "tags": tags}
	if description != "" {
		in["description"] = description
	}
	if err := c.call(ctx, "POST", "registered-models/create", nil, in, &out); err != nil {
		return nil, err
	}
	return &out.Model, nil
}

// GetRegisteredModel returns a model with its latest versions, tags and
// aliases.
func (c *Client) GetRegisteredModel(ctx context.Context, name string) (*RegisteredModel, error) {
	var out struct {
		Model RegisteredModel `json:"registered_model"`
	}
	if err := c.call(ctx, "GET", "registered-models/get", url.Values{"name": {name}}, nil, &out); err != nil {
		return nil, err
	}
	return &out.Model, nil
}

// RenameRegisteredModel renames a model; its versions keep their files.
func (c *Client) RenameRegisteredModel(ctx context.Context, name, newName string) (*RegisteredModel, error) {
	var out struct {
		Model RegisteredModel `json:"registered_model"`
	}
	if err := c.call(ctx, "POST", "registered-models/rename", nil, map[string]string{"name": name, "new_name": newName}, &out); err != nil {
		return nil, err
	}
	return &out.Model, nil
}

// UpdateRegisteredModel sets a model's description.
func (c *Client) UpdateRegisteredModel(ctx context.Context, name, description string) (*RegisteredModel, error) {
	var out struct {
		Model RegisteredModel `json:"registered_model"`
	}
	if err := c.call(ctx, "PATCH", "registered-models/update", nil, map[string]string{"name": name, "description": description}, &out); err != nil {
		return nil, err
	}
	return &out.Model, nil
}

// DeleteRegisteredModel deletes a model and all its versions.
func (c *Client) DeleteRegisteredModel(ctx context.Context, name string) error {
	return c.call(ctx, "DELETE", "registered-models/delete", nil, map[string]string{"name": name}, nil)
}

// SetRegisteredModelTag sets (or overwrites) a tag on a model.
func (c *Client) SetRegisteredModelTag(ctx context.Context, name, key, value string) error {
	return c.call(ctx, "POST", "registered-models/set-tag", nil, map[string]string{"name": name, "key": key, "value": value}, nil)
}

// DeleteRegisteredModelTag removes a tag from a model.
func (c *Client) DeleteRegisteredModelTag(ctx context.Context, name, key string) error {
	return c.call(ctx, "DELETE", "registered-models/delete-tag", nil, map[string]string{"name": name, "key": key}, nil)
}

// SearchRegisteredModelsRequest selects models. Filter uses MLflow's
// registry grammar ("name LIKE 'churn%' AND tags.team = 'risk'"); OrderBy
// entries look like "last_updated_timestamp DESC". MaxResults is the page
// size (the server's default, 100, when 0).
type SearchRegisteredModelsRequest struct {
	Filter     string
	OrderBy    []string
	MaxResults int64
	PageToken  string
}

// RegisteredModelsPage is one page of models; NextPageToken is empty on the
// last page.
type RegisteredModelsPage struct {
	RegisteredModels []RegisteredModel `json:"registered_models"`
	NextPageToken    string            `json:"next_page_token,omitempty"`
}

func searchQuery(filter string, orderBy []string, max int64, token string) url.Values {
	q := url.Values{}
	if filter != "" {
		q.Set("filter", filter)
	}
	for _, o := range orderBy {
		q.Add("order_by", o)
	}
	if max > 0 {
		q.Set("max_results", strconv.FormatInt(max, 10))
	}
	if token != "" {
		q.Set("page_token", token)
	}
	return q
}

// SearchRegisteredModels returns one page of models.
func (c *Client) SearchRegisteredModels(ctx context.Context, req SearchRegisteredModelsRequest) (*RegisteredModelsPage, error) {
	var out RegisteredModelsPage
	if err := c.call(ctx, "GET", "registered-models/search", searchQuery(req.Filter, req.OrderBy, req.MaxResults, req.PageToken), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// IterRegisteredModels yields every model req selects, page by page.
func (c *Client) IterRegisteredModels(ctx context.Context, req SearchRegisteredModelsRequest) iter.Seq2[RegisteredModel, error] {
	return paginate(req.PageToken, func(token string) ([]RegisteredModel, string, error) {
		req.PageToken = token
		page, err := c.SearchRegisteredModels(ctx, req)
		if err != nil {
			return nil, "", err
		}
		return page.RegisteredModels, page.NextPageToken, nil
	})
}

// GetLatestVersions returns the newest version of a model in each of
// stages, or in every stage when none are given.
func (c *Client) GetLatestVersions(ctx context.Context, name string, stages ...string) ([]ModelVersion, error) {
	var out struct {
		Versions []ModelVersion `json:"model_versions"`
	}
	err := c.call(ctx, "POST", "registered-models/get-latest-versions", nil, map[string]any{"name": name, "stages": stages}, &out)
	return out.Versions, err
}

// CreateModelVersionRequest registers a model's files as its next version.
// Source is runs:/<run_id>/<path>, mlflow-artifacts:/<path>,
// models:/<name>/<version> or models:/<name>@<alias>.
type CreateModelVersionRequest struct {
	Name        string `json:"name"`
	Source      string `json:"source"`
	RunID       string `json:"run_id,omitempty"`
	RunLink     string `json:"run_link,omitempty"`
	Description string `json:"description,omitempty"`
	Tags        []Tag  `json:"tags,omitempty"`
}

// CreateModelVersion registers a new version; it is READY when this returns.
func (c *Client) CreateModelVersion(ctx context.Context, req CreateModelVersionRequest) (*ModelVersion, error) {
	return c.versionCall(ctx, "POST", "model-versions/create", nil, req)
}

func (c *Client) versionCall(ctx context.Context, method, endpoint string, q url.Values, in any) (*ModelVersion, error) {
	var out struct {
		Version ModelVersion `json:"model_version"`
	}
	if err := c.call(ctx, method, endpoint, q, in, &out); err != nil {
		return nil, err
	}
	return &out.Version, nil
}

// GetModelVersion returns one version.
func (c *Client) GetModelVersion(ctx context.Context, name, version string) (*ModelVersion, error) {
	return c.versionCall(ctx, "GET", "model-versions/get", url.Values{"name": {name}, "version": {version}}, nil)
}

// UpdateModelVersion sets a version's description.
func (c *Client) UpdateModelVersion(ctx context.Context, name, version, description string) (*ModelVersion, error) {
	return c.versionCall(ctx, "PATCH", "model-versions/update", nil, map[string]string{"name": name, "version": version, "description": description})
}

// DeleteModelVersion deletes a version and its files; its number is not
// reused.
func (c *Client) DeleteModelVersion(ctx context.Context, name, version string) error {
	return c.call(ctx, "DELETE", "model-versions/delete", nil, map[string]string{"name": name, "version": version}, nil)
}

// TransitionModelVersionStage moves a version to stage; with
// archiveExisting, the versions already in that stage move to Archived.
func (c *Client) TransitionModelVersionStage(ctx context.Context, name, version, stage string, archiveExisting bool) (*ModelVersion, error) {
	return c.versionCall(ctx, "POST", "model-versions/transition-stage", nil, map[string]any{
		"name": name, "version": version, "stage": stage, "archive_existing_versions": archiveExisting})
}

// SetModelVersionTag sets (or overwrites) a tag on a version.
func (c *Client) SetModelVersionTag(ctx context.Context, name, version, key, value string) error {
	return c.call(ctx, "POST", "model-versions/set-tag", nil, map[string]string{"name": name, "version": version, "key": key, "value": value}, nil)
}

// DeleteModelVersionTag removes a tag from a version.
func (c *Client) DeleteModelVersionTag(ctx context.Context, name, version, key string) error {
	return c.call(ctx, "DELETE", "model-versions/delete-tag", nil, map[string]string{"name": name, "version": version, "key": key}, nil)
}

// SearchModelVersionsRequest selects versions; Filter uses MLflow's
// grammar ("name = 'churn' AND tags.validation = 'passed'").
type SearchModelVersionsRequest struct {
	Filter     string
	OrderBy    []string
	MaxResults int64
	PageToken  string
}

// ModelVersionsPage is one page of versions.
type ModelVersionsPage struct {
	ModelVersions []ModelVersion `json:"model_versions"`
	NextPageToken string         `json:"next_page_token,omitempty"`
}

// SearchModelVersions returns one page of versions.
func (c *Client) SearchModelVersions(ctx context.Context, req SearchModelVersionsRequest) (*ModelVersionsPage, error) {
	var out ModelVersionsPage
	if err := c.call(ctx, "GET", "model-versions/search", searchQuery(req.Filter, req.OrderBy, req.MaxResults, req.PageToken), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// IterModelVersions yields every version req selects, page by page.
func (c *Client) IterModelVersions(ctx context.Context, req SearchModelVersionsRequest) iter.Seq2[ModelVersion, error] {
	return paginate(req.PageToken, func(token string) ([]ModelVersion, string, error) {
		req.PageToken = token
		page, err := c.SearchModelVersions(ctx, req)
		if err != nil {
			return nil, "", err
		}
		return page.ModelVersions, page.NextPageToken, nil
	})
}

// GetModelVersionDownloadURI returns where a version's files are served
// from (mlflow-artifacts:/registry/...); DownloadArtifactFrom reads them.
func (c *Client) GetModelVersionDownloadURI(ctx context.Context, name, version string) (string, error) {
	var out struct {
		URI string `json:"artifact_uri"`
	}
	err := c.call(ctx, "GET", "model-versions/get-download-uri", url.Values{"name": {name}, "version": {version}}, nil, &out)
	return out.URI, err
}

// SetRegisteredModelAlias points alias at a version.
func (c *Client) SetRegisteredModelAlias(ctx context.Context, name, alias, version string) error {
	return c.call(ctx, "POST", "registered-models/alias", nil, map[string]string{"name": name, "alias": alias, "version": version}, nil)
}

// DeleteRegisteredModelAlias removes an alias.
func (c *Client) DeleteRegisteredModelAlias(ctx context.Context, name, alias string) error {
	return c.call(ctx, "DELETE", "registered-models/alias", nil, map[string]string{"name": name, "alias": alias}, nil)
}

// GetModelVersionByAlias returns the version an alias points at.
func (c *Client) GetModelVersionByAlias(ctx context.Context, name, alias string) (*ModelVersion, error) {
	return c.versionCall(ctx, "GET", "registered-models/alias", url.Values{"name": {name}, "alias": {alias}}, nil)
}

// FileChange is a file of a model version that no longer matches its
// manifest.
type FileChange struct {
	Path             string `json:"path"`
	RegisteredSize   int64  `json:"registered_size"`
	Size             int64  `json:"size"`
	RegisteredSHA256 string `json:"registered_sha256"`
	SHA256           string `json:"sha256"`
}

// VerifyReport says whether a version's stored files still match the
// manifest written when it was registered (a Slipway extension).
type VerifyReport struct {
	Name               string       `json:"name"`
	Version            string       `json:"version"`
	Digest             string       `json:"digest"`
	Files              int          `json:"files"`
	OK                 bool         `json:"ok"`
	Changed            []FileChange `json:"changed,omitempty"`
	Missing            []string     `json:"missing,omitempty"`
	Extra              []string     `json:"extra,omitempty"`
	ManifestFileIntact bool         `json:"manifest_file_intact"`
}

// VerifyModelVersion checks a version's files against its manifest on the
// server. Slipway only.
func (c *Client) VerifyModelVersion(ctx context.Context, name, version string) (*VerifyReport, error) {
	var out VerifyReport
	if err := c.call(ctx, "GET", "model-versions/verify", url.Values{"name": {name}, "version": {version}}, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
