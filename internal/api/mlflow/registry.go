package mlflow

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/slipwayml/slipway/internal/auth"
	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/registry"
)

// The model registry (mlflow/protos/model_registry.proto) under both MLflow
// prefixes, plus the verified, read-only serving of registry storage that
// registry_artifacts.go adds to the artifact proxy.

func (h *Handler) registerRegistry(mux *http.ServeMux) {
	if h.Registry == nil {
		return
	}
	routes := []struct {
		methods string
		path    string
		fn      endpoint
	}{
		{"POST", "registered-models/create", h.createRegisteredModel},
		{"GET", "registered-models/get", h.getRegisteredModel},
		{"POST", "registered-models/rename", h.renameRegisteredModel},
		{"PATCH", "registered-models/update", h.updateRegisteredModel},
		{"DELETE", "registered-models/delete", h.deleteRegisteredModel},
		{"GET", "registered-models/search", h.searchRegisteredModels},
		{"GET POST", "registered-models/get-latest-versions", h.getLatestVersions},
		{"POST", "registered-models/set-tag", h.setRegisteredModelTag},
		{"DELETE", "registered-models/delete-tag", h.deleteRegisteredModelTag},
		{"POST", "registered-models/alias", h.setAlias},
		{"DELETE", "registered-models/alias", h.deleteAlias},
		{"GET", "registered-models/alias", h.getVersionByAlias},
		{"POST", "model-versions/create", h.createModelVersion},
		{"GET", "model-versions/get", h.getModelVersion},
		{"PATCH", "model-versions/update", h.updateModelVersion},
		{"DELETE", "model-versions/delete", h.deleteModelVersion},
		{"GET", "model-versions/search", h.searchModelVersions},
		{"GET", "model-versions/get-download-uri", h.getDownloadURI},
		{"POST", "model-versions/transition-stage", h.transitionStage},
		{"POST", "model-versions/set-tag", h.setModelVersionTag},
		{"DELETE", "model-versions/delete-tag", h.deleteModelVersionTag},
		// Slipway's own: check a version's files against its manifest.
		{"GET", "model-versions/verify", h.verifyModelVersion},
	}
	for _, prefix := range Prefixes {
		for _, rt := range routes {
			for _, m := range strings.Fields(rt.methods) {
				mux.Handle(m+" "+prefix+rt.path, h.serve(rt.fn))
			}
		}
	}
	h.registerRegistryArtifacts(mux)
}

// Wire forms (model_registry.proto). Version numbers are strings on the
// wire; unset optional fields are left out, as protobuf's printer does.

type modelVersionJSON struct {
	Name                 string    `json:"name"`
	Version              string    `json:"version"`
	CreationTimestamp    int64     `json:"creation_timestamp"`
	LastUpdatedTimestamp int64     `json:"last_updated_timestamp"`
	UserID               *string   `json:"user_id,omitempty"`
	CurrentStage         string    `json:"current_stage"`
	Description          *string   `json:"description,omitempty"`
	Source               string    `json:"source"`
	RunID                *string   `json:"run_id,omitempty"`
	Status               string    `json:"status"`
	StatusMessage        string    `json:"status_message,omitempty"`
	Tags                 []tagJSON `json:"tags,omitempty"`
	RunLink              *string   `json:"run_link,omitempty"`
	Aliases              []string  `json:"aliases,omitempty"`
}

type aliasJSON struct {
	Alias   string `json:"alias"`
	Version string `json:"version"`
}

type registeredModelJSON struct {
	Name                 string             `json:"name"`
	CreationTimestamp    int64              `json:"creation_timestamp"`
	LastUpdatedTimestamp int64              `json:"last_updated_timestamp"`
	Description          *string            `json:"description,omitempty"`
	LatestVersions       []modelVersionJSON `json:"latest_versions,omitempty"`
	Tags                 []tagJSON          `json:"tags,omitempty"`
	Aliases              []aliasJSON        `json:"aliases,omitempty"`
}

func registryTags(in []registry.Tag) []tagJSON {
	if len(in) == 0 {
		return nil
	}
	out := make([]tagJSON, len(in))
	for i, t := range in {
		out[i] = tagJSON{Key: t.Key, Value: t.Value}
	}
	return out
}

func registryTagsFrom(in []tagJSON) []registry.Tag {
	out := make([]registry.Tag, len(in))
	for i, t := range in {
		out[i] = registry.Tag{Key: t.Key, Value: t.Value}
	}
	return out
}

func modelVersionOut(v registry.ModelVersion) modelVersionJSON {
	return modelVersionJSON{
		Name: v.Name, Version: strconv.FormatInt(v.Version, 10),
		CreationTimestamp: v.CreationTime, LastUpdatedTimestamp: v.LastUpdatedTime,
		UserID: v.UserID, CurrentStage: v.CurrentStage, Description: v.Description,
		Source: v.Source, RunID: v.RunID, Status: v.Status, StatusMessage: v.StatusMessage,
		Tags: registryTags(v.Tags), RunLink: v.RunLink, Aliases: v.Aliases,
	}
}

func modelVersionsOut(vs []registry.ModelVersion) []modelVersionJSON {
	if len(vs) == 0 {
		return nil
	}
	out := make([]modelVersionJSON, len(vs))
	for i, v := range vs {
		out[i] = modelVersionOut(v)
	}
	return out
}

func registeredModelOut(m registry.RegisteredModel) registeredModelJSON {
	out := registeredModelJSON{
		Name: m.Name, CreationTimestamp: m.CreationTime, LastUpdatedTimestamp: m.LastUpdatedTime,
		Description: m.Description, LatestVersions: modelVersionsOut(m.LatestVersions), Tags: registryTags(m.Tags),
	}
	for _, a := range m.Aliases {
		out.Aliases = append(out.Aliases, aliasJSON{Alias: a.Alias, Version: strconv.FormatInt(a.Version, 10)})
	}
	return out
}

// versionField is a proto string version number; clients send it as a
// string, some as a number.
type versionField string

func (v *versionField) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*v = versionField(s)
		return nil
	}
	if _, err := strconv.ParseInt(string(b), 10, 64); err != nil {
		return typeError(b, "")
	}
	*v = versionField(b)
	return nil
}

func (v versionField) parse() (int64, error) { return registry.ParseVersion(string(v)) }

// decodeRegistry reads a registry request. DELETE requests carry a JSON
// body from MLflow's Python client, but other clients (and curl users) put
// the fields in the query string; both are accepted.
func (h *Handler) decodeRegistry(r *http.Request, v any) error {
	if r.Method == http.MethodDelete && r.URL.RawQuery != "" {
		body, err := io.ReadAll(io.LimitReader(r.Body, h.MaxBodyBytes+1))
		if err != nil {
			return errs.Invalid("could not read request body: %v", err)
		}
		if len(bytes.TrimSpace(body)) == 0 {
			q := r.Clone(r.Context())
			q.Method = http.MethodGet
			return decode(q, v, h.MaxBodyBytes)
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	return h.decode(r, v)
}

type nameRef struct {
	Name string `json:"name"`
}

type versionRef struct {
	Name    string       `json:"name"`
	Version versionField `json:"version"`
}

func (h *Handler) versionRefFrom(r *http.Request) (string, int64, error) {
	var req versionRef
	if err := h.decodeRegistry(r, &req); err != nil {
		return "", 0, err
	}
	return parseVersionRef(req)
}

func parseVersionRef(req versionRef) (string, int64, error) {
	if req.Name == "" {
		return "", 0, missingField("name")
	}
	n, err := req.Version.parse()
	return req.Name, n, err
}

func missingField(f string) error {
	return errs.Invalid("Missing value for required parameter '%s'. See the API docs for more information about request parameters.", f)
}

// --- registered models ---

func (h *Handler) createRegisteredModel(r *http.Request) (any, error) {
	var req struct {
		Name        string    `json:"name"`
		Tags        []tagJSON `json:"tags"`
		Description string    `json:"description"`
	}
	if err := h.decodeRegistry(r, &req); err != nil {
		return nil, err
	}
	if req.Name == "" {
		return nil, missingField("name")
	}
	m, err := h.Registry.CreateRegisteredModel(r.Context(), req.Name, registryTagsFrom(req.Tags), &req.Description)
	if err != nil {
		return nil, err
	}
	return map[string]any{"registered_model": registeredModelOut(m)}, nil
}

func (h *Handler) getRegisteredModel(r *http.Request) (any, error) {
	var req nameRef
	if err := h.decodeRegistry(r, &req); err != nil {
		return nil, err
	}
	if req.Name == "" {
		return nil, missingField("name")
	}
	m, err := h.Registry.GetRegisteredModel(r.Context(), req.Name)
	if err != nil {
		return nil, err
	}
	return map[string]any{"registered_model": registeredModelOut(m)}, nil
}

func (h *Handler) renameRegisteredModel(r *http.Request) (any, error) {
	var req struct {
		Name    string `json:"name"`
		NewName string `json:"new_name"`
	}
	if err := h.decodeRegistry(r, &req); err != nil {
		return nil, err
	}
	if req.Name == "" {
		return nil, missingField("name")
	}
	if req.NewName == "" {
		return nil, missingField("new_name")
	}
	m, err := h.Registry.RenameRegisteredModel(r.Context(), req.Name, req.NewName)
	if err != nil {
		return nil, err
	}
	return map[string]any{"registered_model": registeredModelOut(m)}, nil
}

func (h *Handler) updateRegisteredModel(r *http.Request) (any, error) {
	var req struct {
		Name        string `json:"name"`
		Description string `json:"description"`
	}
	if err := h.decodeRegistry(r, &req); err != nil {
		return nil, err
	}
	if req.Name == "" {
		return nil, missingField("name")
	}
	m, err := h.Registry.UpdateRegisteredModel(r.Context(), req.Name, &req.Description)
	if err != nil {
		return nil, err
	}
	return map[string]any{"registered_model": registeredModelOut(m)}, nil
}

func (h *Handler) deleteRegisteredModel(r *http.Request) (any, error) {
	var req nameRef
	if err := h.decodeRegistry(r, &req); err != nil {
		return nil, err
	}
	if req.Name == "" {
		return nil, missingField("name")
	}
	return empty{}, h.Registry.DeleteRegisteredModel(r.Context(), req.Name)
}

func (h *Handler) searchRegisteredModels(r *http.Request) (any, error) {
	var req struct {
		Filter     string   `json:"filter"`
		MaxResults Int64    `json:"max_results"`
		OrderBy    []string `json:"order_by"`
		PageToken  string   `json:"page_token"`
	}
	if err := h.decodeRegistry(r, &req); err != nil {
		return nil, err
	}
	models, next, err := h.Registry.SearchRegisteredModels(r.Context(), registry.SearchRegisteredModelsRequest{
		Filter: req.Filter, MaxResults: int64(req.MaxResults), OrderBy: req.OrderBy, PageToken: req.PageToken,
	})
	if err != nil {
		return nil, err
	}
	out := struct {
		RegisteredModels []registeredModelJSON `json:"registered_models,omitempty"`
		NextPageToken    string                `json:"next_page_token,omitempty"`
	}{NextPageToken: next}
	for _, m := range models {
		out.RegisteredModels = append(out.RegisteredModels, registeredModelOut(m))
	}
	return out, nil
}

func (h *Handler) getLatestVersions(r *http.Request) (any, error) {
	var req struct {
		Name   string   `json:"name"`
		Stages []string `json:"stages"`
	}
	if r.Method == http.MethodGet {
		// stages is repeated: a single query argument is still a list.
		q := r.URL.Query()
		req.Name = q.Get("name")
		req.Stages = q["stages"]
	} else if err := h.decodeRegistry(r, &req); err != nil {
		return nil, err
	}
	if req.Name == "" {
		return nil, missingField("name")
	}
	vs, err := h.Registry.GetLatestVersions(r.Context(), req.Name, req.Stages)
	if err != nil {
		return nil, err
	}
	return struct {
		ModelVersions []modelVersionJSON `json:"model_versions,omitempty"`
	}{modelVersionsOut(vs)}, nil
}

func (h *Handler) setRegisteredModelTag(r *http.Request) (any, error) {
	var req struct {
		Name  string `json:"name"`
		Key   string `json:"key"`
		Value string `json:"value"`
	}
	if err := h.decodeRegistry(r, &req); err != nil {
		return nil, err
	}
	if req.Name == "" {
		return nil, missingField("name")
	}
	if req.Key == "" {
		return nil, missingField("key")
	}
	return empty{}, h.Registry.SetRegisteredModelTag(r.Context(), req.Name, registry.Tag{Key: req.Key, Value: req.Value})
}

func (h *Handler) deleteRegisteredModelTag(r *http.Request) (any, error) {
	var req struct {
		Name string `json:"name"`
		Key  string `json:"key"`
	}
	if err := h.decodeRegistry(r, &req); err != nil {
		return nil, err
	}
	if req.Name == "" {
		return nil, missingField("name")
	}
	if req.Key == "" {
		return nil, missingField("key")
	}
	return empty{}, h.Registry.DeleteRegisteredModelTag(r.Context(), req.Name, req.Key)
}

type aliasRef struct {
	Name    string       `json:"name"`
	Alias   string       `json:"alias"`
	Version versionField `json:"version"`
}

func (h *Handler) aliasRefFrom(r *http.Request) (aliasRef, error) {
	var req aliasRef
	if err := h.decodeRegistry(r, &req); err != nil {
		return req, err
	}
	if req.Name == "" {
		return req, missingField("name")
	}
	if req.Alias == "" {
		return req, missingField("alias")
	}
	return req, nil
}

func (h *Handler) setAlias(r *http.Request) (any, error) {
	req, err := h.aliasRefFrom(r)
	if err != nil {
		return nil, err
	}
	if req.Version == "" {
		return nil, missingField("version")
	}
	n, err := req.Version.parse()
	if err != nil {
		return nil, err
	}
	return empty{}, h.Registry.SetAlias(r.Context(), req.Name, req.Alias, n)
}

func (h *Handler) deleteAlias(r *http.Request) (any, error) {
	req, err := h.aliasRefFrom(r)
	if err != nil {
		return nil, err
	}
	return empty{}, h.Registry.DeleteAlias(r.Context(), req.Name, req.Alias)
}

func (h *Handler) getVersionByAlias(r *http.Request) (any, error) {
	req, err := h.aliasRefFrom(r)
	if err != nil {
		return nil, err
	}
	v, err := h.Registry.GetVersionByAlias(r.Context(), req.Name, req.Alias)
	if err != nil {
		return nil, err
	}
	return map[string]any{"model_version": modelVersionOut(v)}, nil
}

// --- model versions ---

func (h *Handler) createModelVersion(r *http.Request) (any, error) {
	var req struct {
		Name        string    `json:"name"`
		Source      string    `json:"source"`
		RunID       string    `json:"run_id"`
		Tags        []tagJSON `json:"tags"`
		RunLink     string    `json:"run_link"`
		Description string    `json:"description"`
	}
	if err := h.decodeRegistry(r, &req); err != nil {
		return nil, err
	}
	if req.Name == "" {
		return nil, missingField("name")
	}
	if req.Source == "" {
		return nil, missingField("source")
	}
	user := ""
	if p, ok := auth.PrincipalFrom(r.Context()); ok {
		user = p.Username
	}
	v, err := h.Registry.CreateModelVersion(r.Context(), registry.CreateModelVersionRequest{
		Name: req.Name, Source: req.Source, RunID: req.RunID, RunLink: req.RunLink,
		Description: req.Description, Tags: registryTagsFrom(req.Tags), UserID: user,
	})
	if err != nil {
		return nil, err
	}
	return map[string]any{"model_version": modelVersionOut(v)}, nil
}

func (h *Handler) getModelVersion(r *http.Request) (any, error) {
	name, n, err := h.versionRefFrom(r)
	if err != nil {
		return nil, err
	}
	v, err := h.Registry.GetModelVersion(r.Context(), name, n)
	if err != nil {
		return nil, err
	}
	return map[string]any{"model_version": modelVersionOut(v)}, nil
}

func (h *Handler) updateModelVersion(r *http.Request) (any, error) {
	var req struct {
		versionRef
		Description *string `json:"description"`
	}
	if err := h.decodeRegistry(r, &req); err != nil {
		return nil, err
	}
	name, n, err := parseVersionRef(req.versionRef)
	if err != nil {
		return nil, err
	}
	v, err := h.Registry.UpdateModelVersion(r.Context(), name, n, req.Description)
	if err != nil {
		return nil, err
	}
	return map[string]any{"model_version": modelVersionOut(v)}, nil
}

func (h *Handler) deleteModelVersion(r *http.Request) (any, error) {
	name, n, err := h.versionRefFrom(r)
	if err != nil {
		return nil, err
	}
	return empty{}, h.Registry.DeleteModelVersion(r.Context(), name, n)
}

func (h *Handler) searchModelVersions(r *http.Request) (any, error) {
	var req struct {
		Filter     string   `json:"filter"`
		MaxResults Int64    `json:"max_results"`
		OrderBy    []string `json:"order_by"`
		PageToken  string   `json:"page_token"`
	}
	if err := h.decodeRegistry(r, &req); err != nil {
		return nil, err
	}
	vs, next, err := h.Registry.SearchModelVersions(r.Context(), registry.SearchModelVersionsRequest{
		Filter: req.Filter, MaxResults: int64(req.MaxResults), OrderBy: req.OrderBy, PageToken: req.PageToken,
	})
	if err != nil {
		return nil, err
	}
	return struct {
		ModelVersions []modelVersionJSON `json:"model_versions,omitempty"`
		NextPageToken string             `json:"next_page_token,omitempty"`
	}{modelVersionsOut(vs), next}, nil
}

func (h *Handler) getDownloadURI(r *http.Request) (any, error) {
	name, n, err := h.versionRefFrom(r)
	if err != nil {
		return nil, err
	}
	uri, err := h.Registry.DownloadURI(r.Context(), name, n)
	if err != nil {
		return nil, err
	}
	return map[string]string{"artifact_uri": uri}, nil
}

func (h *Handler) transitionStage(r *http.Request) (any, error) {
	var req struct {
		versionRef
		Stage           string `json:"stage"`
		ArchiveExisting Bool   `json:"archive_existing_versions"`
	}
	if err := h.decodeRegistry(r, &req); err != nil {
		return nil, err
	}
	name, n, err := parseVersionRef(req.versionRef)
	if err != nil {
		return nil, err
	}
	if req.Stage == "" {
		return nil, missingField("stage")
	}
	v, err := h.Registry.TransitionStage(r.Context(), name, n, req.Stage, bool(req.ArchiveExisting))
	if err != nil {
		return nil, err
	}
	return map[string]any{"model_version": modelVersionOut(v)}, nil
}

func (h *Handler) setModelVersionTag(r *http.Request) (any, error) {
	var req struct {
		versionRef
		Key   string `json:"key"`
		Value string `json:"value"`
	}
	if err := h.decodeRegistry(r, &req); err != nil {
		return nil, err
	}
	name, n, err := parseVersionRef(req.versionRef)
	if err != nil {
		return nil, err
	}
	if req.Key == "" {
		return nil, missingField("key")
	}
	return empty{}, h.Registry.SetModelVersionTag(r.Context(), name, n, registry.Tag{Key: req.Key, Value: req.Value})
}

func (h *Handler) deleteModelVersionTag(r *http.Request) (any, error) {
	var req struct {
		versionRef
		Key string `json:"key"`
	}
	if err := h.decodeRegistry(r, &req); err != nil {
		return nil, err
	}
	name, n, err := parseVersionRef(req.versionRef)
	if err != nil {
		return nil, err
	}
	if req.Key == "" {
		return nil, missingField("key")
	}
	return empty{}, h.Registry.DeleteModelVersionTag(r.Context(), name, n, req.Key)
}

type fileChangeJSON struct {
	Path       string `json:"path"`
	WantSize   int64  `json:"registered_size"`
	GotSize    int64  `json:"size"`
	WantSHA256 string `json:"registered_sha256"`
	GotSHA256  string `json:"sha256"`
}

// verifyModelVersion answers Slipway's model-versions/verify: whether a
// version's stored files still match its manifest, and which do not.
func (h *Handler) verifyModelVersion(r *http.Request) (any, error) {
	name, n, err := h.versionRefFrom(r)
	if err != nil {
		return nil, err
	}
	rep, err := h.Registry.Verify(r.Context(), name, n)
	if err != nil {
		return nil, err
	}
	out := struct {
		Name               string           `json:"name"`
		Version            string           `json:"version"`
		Digest             string           `json:"digest"`
		Files              int              `json:"files"`
		OK                 bool             `json:"ok"`
		Changed            []fileChangeJSON `json:"changed,omitempty"`
		Missing            []string         `json:"missing,omitempty"`
		Extra              []string         `json:"extra,omitempty"`
		ManifestFileIntact bool             `json:"manifest_file_intact"`
	}{Name: rep.Name, Version: strconv.FormatInt(rep.Version, 10), Digest: rep.Digest, Files: rep.Files, OK: rep.OK(),
		Missing: rep.Missing, Extra: rep.Extra, ManifestFileIntact: rep.ManifestFileIntact}
	for _, c := range rep.Changed {
		out.Changed = append(out.Changed, fileChangeJSON{Path: c.Path, WantSize: c.WantSize, GotSize: c.GotSize, WantSHA256: c.WantSHA256, GotSHA256: c.GotSHA256})
	}
	return out, nil
}
