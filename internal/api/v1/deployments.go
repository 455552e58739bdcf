package v1

import (
	"math"
	"net/http"
	"strconv"

	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/serving"
)

func (h *Handler) registerDeployments(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/deployments", h.listDeployments)
	mux.HandleFunc("POST /api/v1/deployments", h.createDeployment)
	mux.HandleFunc("GET /api/v1/deployments/{name}", h.getDeployment)
	mux.HandleFunc("DELETE /api/v1/deployments/{name}", h.deleteDeployment)
	mux.HandleFunc("GET /api/v1/deployments/{name}/revisions", h.deploymentRevisions)
	mux.HandleFunc("POST /api/v1/deployments/{name}/canary", h.canary)
	mux.HandleFunc("POST /api/v1/deployments/{name}/shadow", h.shadow)
	mux.HandleFunc("POST /api/v1/deployments/{name}/feedback", h.feedback)
	mux.HandleFunc("GET /api/v1/deployments/{name}/predictions", h.predictions)
	mux.HandleFunc("POST /api/v1/deployments/{name}/rollout", h.startRollout)
	mux.HandleFunc("GET /api/v1/deployments/{name}/rollout", h.rollout(func(r *http.Request, s *serving.Service, name string) (serving.Rollout, error) {
		return s.GetRollout(r.Context(), name)
	}))
	mux.HandleFunc("DELETE /api/v1/deployments/{name}/rollout", h.rollout(func(r *http.Request, s *serving.Service, name string) (serving.Rollout, error) {
		return s.CancelRollout(r.Context(), name)
	}))
	mux.HandleFunc("POST /api/v1/deployments/{name}/promote", h.deploymentChange(func(r *http.Request, s *serving.Service, name string) (serving.Deployment, error) {
		return s.Promote(r.Context(), name)
	}))
	mux.HandleFunc("POST /api/v1/deployments/{name}/rollback", h.deploymentChange(func(r *http.Request, s *serving.Service, name string) (serving.Deployment, error) {
		return s.Rollback(r.Context(), name)
	}))
}

// maxDeploymentBody bounds a deployment change's JSON body.
const maxDeploymentBody = 64 << 10

func (h *Handler) listDeployments(w http.ResponseWriter, r *http.Request) {
	ds, err := h.Deployments.List(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if ds == nil {
		ds = []serving.Deployment{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"deployments": ds, "prediction_log": h.Deployments.PredictionLog().Stats()})
}

type feedbackBody struct {
	Feedback []serving.Feedback `json:"feedback"`
}

// feedback takes ground-truth labels for logged requests, by request id.
func (h *Handler) feedback(w http.ResponseWriter, r *http.Request) {
	var body feedbackBody
	if err := decode(w, r, 16<<20, &body); err != nil {
		h.fail(w, r, err)
		return
	}
	if err := h.Deployments.RecordFeedback(r.Context(), r.PathValue("name"), body.Feedback); err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"recorded": len(body.Feedback)})
}

// predictions reads the prediction log of a deployment over
// [from_ms, to_ms), oldest first, with labels.
func (h *Handler) predictions(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var bad error
	num := func(field string, def int64) int64 {
		s := q.Get(field)
		if s == "" || bad != nil {
			return def
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			bad = errs.Invalid("%s: %q is not a number", field, s)
		}
		return n
	}
	from, to, limit := num("from_ms", 0), num("to_ms", math.MaxInt64), num("max_results", 1000)
	if bad != nil {
		h.fail(w, r, bad)
		return
	}
	ps, err := h.Deployments.Predictions(r.Context(), r.PathValue("name"), from, to, int(limit))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if ps == nil {
		ps = []serving.LoggedPrediction{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"predictions": ps})
}

type createDeploymentBody struct {
	Name  string `json:"name"`
	Model string `json:"model"`
}

func (h *Handler) createDeployment(w http.ResponseWriter, r *http.Request) {
	var body createDeploymentBody
	if err := decode(w, r, maxDeploymentBody, &body); err != nil {
		h.fail(w, r, err)
		return
	}
	if body.Model == "" {
		h.fail(w, r, errs.Invalid("model: is required: models:/NAME/VERSION or models:/NAME@ALIAS"))
		return
	}
	d, err := h.Deployments.Create(r.Context(), body.Name, body.Model)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"deployment": d})
}

func (h *Handler) getDeployment(w http.ResponseWriter, r *http.Request) {
	d, err := h.Deployments.Get(r.Context(), r.PathValue("name"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"deployment": d})
}

func (h *Handler) deleteDeployment(w http.ResponseWriter, r *http.Request) {
	if err := h.Deployments.Delete(r.Context(), r.PathValue("name")); err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{})
}

func (h *Handler) deploymentRevisions(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if _, err := h.Deployments.Get(r.Context(), name); err != nil {
		h.fail(w, r, err)
		return
	}
	revs, err := h.Deployments.Revisions(r.Context(), name)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"revisions": revs})
}

type trafficBody struct {
	Model   string `json:"model"`
	Percent int    `json:"percent"`
}

func (h *Handler) canary(w http.ResponseWriter, r *http.Request) {
	var body trafficBody
	if err := decode(w, r, maxDeploymentBody, &body); err != nil {
		h.fail(w, r, err)
		return
	}
	d, err := h.Deployments.Canary(r.Context(), r.PathValue("name"), body.Model, body.Percent)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"deployment": d})
}

// shadow mirrors a share of traffic to a model; percent 0 stops it.
func (h *Handler) shadow(w http.ResponseWriter, r *http.Request) {
	var body trafficBody
	if err := decode(w, r, maxDeploymentBody, &body); err != nil {
		h.fail(w, r, err)
		return
	}
	d, err := h.Deployments.SetShadow(r.Context(), r.PathValue("name"), body.Model, body.Percent)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"deployment": d})
}

func (h *Handler) deploymentChange(change func(*http.Request, *serving.Service, string) (serving.Deployment, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		d, err := change(r, h.Deployments, r.PathValue("name"))
		if err != nil {
			h.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"deployment": d})
	}
}

// startRollout starts a progressive rollout of a canary (docs/serving.md).
func (h *Handler) startRollout(w http.ResponseWriter, r *http.Request) {
	var spec serving.RolloutSpec
	if err := decode(w, r, maxDeploymentBody, &spec); err != nil {
		h.fail(w, r, err)
		return
	}
	ro, err := h.Deployments.StartRollout(r.Context(), r.PathValue("name"), spec)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"rollout": ro})
}

func (h *Handler) rollout(do func(*http.Request, *serving.Service, string) (serving.Rollout, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ro, err := do(r, h.Deployments, r.PathValue("name"))
		if err != nil {
			h.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"rollout": ro})
	}
}
