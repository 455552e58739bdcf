package v1

import (
	"net/http"
	"strconv"

	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/pipelines/runs"
)

func (h *Handler) registerPipelines(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/pipelines", h.listPipelines)
	mux.HandleFunc("GET /api/v1/pipelines/{name}", h.getPipeline)
	mux.HandleFunc("PUT /api/v1/pipelines/{name}", h.putPipeline)
	mux.HandleFunc("DELETE /api/v1/pipelines/{name}", h.deletePipeline)
	mux.HandleFunc("POST /api/v1/pipelines/{name}/runs", h.startRun)
	mux.HandleFunc("GET /api/v1/pipeline-runs", h.listRuns)
	mux.HandleFunc("GET /api/v1/pipeline-runs/{ref}", h.getRun)
	mux.HandleFunc("POST /api/v1/pipeline-runs/{id}/cancel", h.cancelRun)
	mux.HandleFunc("POST /api/v1/pipeline-runs/{id}/resume", h.resumeRun)
	mux.HandleFunc("GET /api/v1/pipeline-runs/{id}/logs/{step}", h.stepLog)
}

type pipelineBody struct {
	Spec       string `json:"spec"`
	File       string `json:"file"`
	ProjectDir string `json:"project_dir"`
}

// putPipeline registers a spec. Steps run on the server's machine as the
// server's user, so this is an admin's call when tokens are required.
func (h *Handler) putPipeline(w http.ResponseWriter, r *http.Request) {
	var body pipelineBody
	if err := decode(w, r, runs.MaxSpecBytes+64<<10, &body); err != nil {
		h.fail(w, r, err)
		return
	}
	if body.Spec == "" {
		h.fail(w, r, errs.Invalid("spec: is required: the pipeline's YAML text"))
		return
	}
	p, err := h.Pipelines.PutPipeline(r.Context(), r.PathValue("name"), body.File, []byte(body.Spec), body.ProjectDir, username(r))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"pipeline": p})
}

func (h *Handler) getPipeline(w http.ResponseWriter, r *http.Request) {
	p, err := h.Pipelines.GetPipeline(r.Context(), r.PathValue("name"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"pipeline": p})
}

func (h *Handler) listPipelines(w http.ResponseWriter, r *http.Request) {
	ps, err := h.Pipelines.ListPipelines(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	for i := range ps {
		ps[i].Spec = "" // GET /api/v1/pipelines/{name} has it
	}
	if ps == nil {
		ps = []runs.Pipeline{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"pipelines": ps})
}

func (h *Handler) deletePipeline(w http.ResponseWriter, r *http.Request) {
	if err := h.Pipelines.DeletePipeline(r.Context(), r.PathValue("name")); err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{})
}

type startBody struct {
	Params map[string]string `json:"params"`
	Force  bool              `json:"force"`
}

// startRun queues a manual run; 201 means it is durably queued.
func (h *Handler) startRun(w http.ResponseWriter, r *http.Request) {
	var body startBody
	if err := decode(w, r, runs.MaxTriggerBytes, &body); err != nil {
		h.fail(w, r, err)
		return
	}
	run, err := h.Pipelines.Start(r.Context(), runs.StartRequest{Pipeline: r.PathValue("name"), Params: body.Params,
		Force: body.Force, Trigger: runs.Trigger{Kind: runs.TriggerManual}, By: username(r)})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"run": run})
}

func (h *Handler) listRuns(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	req := runs.ListRunsRequest{Pipeline: q.Get("pipeline"), Status: q.Get("status"), PageToken: q.Get("page_token")}
	if s := q.Get("max_results"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			h.fail(w, r, errs.Invalid("max_results: %q is not a number", s))
			return
		}
		req.MaxResults = n
	}
	list, next, err := h.Pipelines.ListRuns(r.Context(), req)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if list == nil {
		list = []runs.Run{}
	}
	out := map[string]any{"runs": list}
	if next != "" {
		out["next_page_token"] = next
	}
	writeJSON(w, http.StatusOK, out)
}

// getRun takes a run id, PIPELINE#NUMBER (with # escaped as %23) or a
// pipeline name for its latest run.
func (h *Handler) getRun(w http.ResponseWriter, r *http.Request) {
	run, err := h.Pipelines.FindRun(r.Context(), r.PathValue("ref"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"run": run})
}

func (h *Handler) cancelRun(w http.ResponseWriter, r *http.Request) {
	run, err := h.Pipelines.Cancel(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"run": run})
}

func (h *Handler) resumeRun(w http.ResponseWriter, r *http.Request) {
	run, err := h.Pipelines.Resume(r.Context(), r.PathValue("id"), username(r))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"run": run})
}

// Headers of a step log response: where the next read starts, and whether
// the log is complete (the step ended and everything was sent).
const (
	HeaderLogOffset   = "X-Slipway-Log-Offset"
	HeaderLogComplete = "X-Slipway-Log-Complete"
)

// stepLog answers a piece of a step's log from ?offset=N as text; a
// follower asks again from the returned offset until the log is complete.
func (h *Handler) stepLog(w http.ResponseWriter, r *http.Request) {
	var offset int64
	if s := r.URL.Query().Get("offset"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			h.fail(w, r, errs.Invalid("offset: %q is not a number", s))
			return
		}
		offset = n
	}
	chunk, err := h.Pipelines.ReadLog(r.Context(), r.PathValue("id"), r.PathValue("step"), offset)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set(HeaderLogOffset, strconv.FormatInt(chunk.Offset+int64(len(chunk.Data)), 10))
	w.Header().Set(HeaderLogComplete, strconv.FormatBool(chunk.Complete))
	w.WriteHeader(http.StatusOK)
	w.Write(chunk.Data)
}
