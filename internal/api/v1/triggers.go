package v1

import (
	"errors"
	"io"
	"net/http"

	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/pipelines/runs"
	"github.com/slipwayml/slipway/internal/pipelines/triggers"
)

// WebhookPath is the pattern of the push webhook route. It takes no API
// token (GitHub and GitLab cannot send one): the handler checks the
// delivery's signature against the pipeline's webhook secret instead.
const WebhookPath = "/api/v1/pipelines/{name}/trigger"

func (h *Handler) registerTriggers(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/schedules", h.listSchedules)
	mux.HandleFunc("GET /api/v1/pipelines/{name}/schedules", h.listSchedules)
	mux.HandleFunc("POST /api/v1/pipelines/{name}/schedules", h.createSchedule)
	mux.HandleFunc("GET /api/v1/schedules/{id}", h.getSchedule)
	mux.HandleFunc("PATCH /api/v1/schedules/{id}", h.patchSchedule)
	mux.HandleFunc("DELETE /api/v1/schedules/{id}", h.deleteSchedule)
	mux.HandleFunc("GET /api/v1/pipelines/{name}/webhook", h.getWebhook)
	mux.HandleFunc("PUT /api/v1/pipelines/{name}/webhook", h.putWebhook)
	mux.HandleFunc("POST "+WebhookPath, h.webhook)
}

// scheduleBody creates a cron schedule (cron, timezone) or a data trigger
// (dataset); params apply to either.
type scheduleBody struct {
	Cron     string            `json:"cron"`
	Timezone string            `json:"timezone"`
	Dataset  string            `json:"dataset"`
	Params   map[string]string `json:"params"`
}

func (h *Handler) createSchedule(w http.ResponseWriter, r *http.Request) {
	var body scheduleBody
	if err := decode(w, r, runs.MaxTriggerBytes, &body); err != nil {
		h.fail(w, r, err)
		return
	}
	var t triggers.Trigger
	var err error
	switch {
	case body.Cron != "" && body.Dataset != "":
		err = errs.Invalid("cron, dataset: give one: cron for a schedule, dataset for runs on new data versions")
	case body.Dataset != "":
		if body.Timezone != "" {
			err = errs.Invalid("timezone: applies to cron schedules, not to a dataset trigger")
			break
		}
		t, err = h.Triggers.CreateDataTrigger(r.Context(), triggers.DataTriggerRequest{Pipeline: r.PathValue("name"),
			Dataset: body.Dataset, Params: body.Params, By: username(r)})
	default:
		t, err = h.Triggers.CreateSchedule(r.Context(), triggers.ScheduleRequest{Pipeline: r.PathValue("name"),
			Cron: body.Cron, Timezone: body.Timezone, Params: body.Params, By: username(r)})
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"schedule": t})
}

func (h *Handler) listSchedules(w http.ResponseWriter, r *http.Request) {
	list, err := h.Triggers.List(r.Context(), r.PathValue("name"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"schedules": list})
}

func (h *Handler) getSchedule(w http.ResponseWriter, r *http.Request) {
	t, err := h.Triggers.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"schedule": t})
}

type patchScheduleBody struct {
	Enabled *bool `json:"enabled"`
}

// patchSchedule pauses ({"enabled": false}) or resumes a schedule.
func (h *Handler) patchSchedule(w http.ResponseWriter, r *http.Request) {
	var body patchScheduleBody
	if err := decode(w, r, 1<<10, &body); err != nil {
		h.fail(w, r, err)
		return
	}
	if body.Enabled == nil {
		h.fail(w, r, errs.Invalid("enabled: is required: true to resume the schedule, false to pause it"))
		return
	}
	t, err := h.Triggers.SetEnabled(r.Context(), r.PathValue("id"), *body.Enabled)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"schedule": t})
}

func (h *Handler) deleteSchedule(w http.ResponseWriter, r *http.Request) {
	if err := h.Triggers.Delete(r.Context(), r.PathValue("id")); err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{})
}

type webhookBody struct {
	Secret string `json:"secret"`
	Branch string `json:"branch"`
}

// putWebhook sets (or with an empty secret removes) the secret that signs
// the pipeline's push webhooks. The answer never holds the secret.
func (h *Handler) putWebhook(w http.ResponseWriter, r *http.Request) {
	var body webhookBody
	if err := decode(w, r, 8<<10, &body); err != nil {
		h.fail(w, r, err)
		return
	}
	hook, err := h.Triggers.SetWebhook(r.Context(), r.PathValue("name"), body.Secret, body.Branch, username(r))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"webhook": hook})
}

func (h *Handler) getWebhook(w http.ResponseWriter, r *http.Request) {
	hook, err := h.Triggers.GetWebhook(r.Context(), r.PathValue("name"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"webhook": hook})
}

// webhook takes a GitHub or GitLab push delivery: 201 with the queued
// run, 200 with the reason when the delivery starts none (a ping, another
// branch), 401 when the signature does not hold.
func (h *Handler) webhook(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, triggers.MaxWebhookBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			err = errs.New(errs.ResourceExhausted, "request body: larger than %d bytes", triggers.MaxWebhookBytes)
		} else {
			err = errs.Invalid("request body: %v", err)
		}
		h.fail(w, r, err)
		return
	}
	res, err := h.Triggers.HandleWebhook(r.Context(), r.PathValue("name"), r.Header, body)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if res.Run == nil {
		writeJSON(w, http.StatusOK, res)
		return
	}
	writeJSON(w, http.StatusCreated, res)
}
