package v1

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/slipwayml/slipway/internal/audit"
	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/registry"
)

// Governance: promotion policies, approvals, a dry run of the gates, and
// the audit log. Promotions themselves go through the MLflow API (set an
// alias, transition a stage), which enforces the policy.

// maxPolicyBody bounds a policy document; the limit is the registry's.
const maxPolicyBody = registry.MaxPolicyBytes

func (h *Handler) registerGovernance(mux *http.ServeMux) {
	if h.Models != nil {
		mux.HandleFunc("GET /api/v1/models/{name}/policy", h.getPolicy)
		mux.HandleFunc("PUT /api/v1/models/{name}/policy", h.setPolicy)
		mux.HandleFunc("DELETE /api/v1/models/{name}/policy", h.deletePolicy)
		mux.HandleFunc("GET /api/v1/models/{name}/versions/{version}/approvals", h.listApprovals)
		mux.HandleFunc("POST /api/v1/models/{name}/versions/{version}/approvals", h.approve)
		mux.HandleFunc("GET /api/v1/models/{name}/versions/{version}/gates", h.evaluateGates)
	}
	if h.Audit != nil {
		mux.HandleFunc("GET /api/v1/audit", h.listAudit)
	}
}

type policyJSON struct {
	Name        string          `json:"name"`
	Policy      registry.Policy `json:"policy"`
	UpdatedTime int64           `json:"updated_time"`
	UpdatedBy   string          `json:"updated_by"`
}

func (h *Handler) getPolicy(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	sp, err := h.Models.GetPolicy(r.Context(), name)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, policyJSON{name, sp.Policy, sp.UpdatedTime, sp.UpdatedBy})
}

// setPolicy replaces the model's policy with the body, a policy document
// ({"aliases": {...}, "stages": {...}}) in the YAML file's shape.
func (h *Handler) setPolicy(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var p registry.Policy
	if err := decode(w, r, maxPolicyBody, &p); err != nil {
		h.fail(w, r, err)
		return
	}
	sp, err := h.Models.SetPolicy(r.Context(), name, p)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, policyJSON{name, sp.Policy, sp.UpdatedTime, sp.UpdatedBy})
}

func (h *Handler) deletePolicy(w http.ResponseWriter, r *http.Request) {
	if err := h.Models.DeletePolicy(r.Context(), r.PathValue("name")); err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

// targetJSON is a promotion target: an alias or a stage, one of the two.
type targetJSON struct {
	Alias string `json:"alias,omitempty"`
	Stage string `json:"stage,omitempty"`
}

func targetOut(t registry.Target) targetJSON { return targetJSON{Alias: t.Alias, Stage: t.Stage} }

type approvalJSON struct {
	targetJSON
	Approver     string `json:"approver"`
	ApproverRole string `json:"approver_role"`
	Comment      string `json:"comment,omitempty"`
	CreationTime int64  `json:"creation_time"`
}

func approvalOut(a registry.Approval) approvalJSON {
	return approvalJSON{targetOut(a.Target), a.Approver, a.ApproverRole, a.Comment, a.CreationTime}
}

func pathVersion(r *http.Request) (string, int64, error) {
	n, err := registry.ParseVersion(r.PathValue("version"))
	return r.PathValue("name"), n, err
}

func (h *Handler) listApprovals(w http.ResponseWriter, r *http.Request) {
	name, version, err := pathVersion(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	as, err := h.Models.Approvals(r.Context(), name, version)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := make([]approvalJSON, len(as))
	for i, a := range as {
		out[i] = approvalOut(a)
	}
	writeJSON(w, http.StatusOK, map[string]any{"approvals": out})
}

// approve records the caller's approval of the version for the target in
// the body: {"alias": "production"} or {"stage": "Production"}, and an
// optional "comment".
func (h *Handler) approve(w http.ResponseWriter, r *http.Request) {
	name, version, err := pathVersion(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var body struct {
		targetJSON
		Comment string `json:"comment"`
	}
	if err := decode(w, r, 64<<10, &body); err != nil {
		h.fail(w, r, err)
		return
	}
	a, err := h.Models.Approve(r.Context(), name, version, registry.Target{Alias: body.Alias, Stage: body.Stage}, body.Comment)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"approval": approvalOut(a)})
}

type gateJSON struct {
	Gate   string `json:"gate"`
	Met    bool   `json:"met"`
	Detail string `json:"detail"`
}

// evaluateGates is a dry run: each gate of ?alias= or ?stage= with whether
// the version meets it and why, changing nothing.
func (h *Handler) evaluateGates(w http.ResponseWriter, r *http.Request) {
	name, version, err := pathVersion(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	e, err := h.Models.EvaluateGates(r.Context(), name, version, registry.Target{Alias: q.Get("alias"), Stage: q.Get("stage")})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	gates := make([]gateJSON, len(e.Gates))
	for i, g := range e.Gates {
		gates[i] = gateJSON{g.Gate, g.Met, g.Detail}
	}
	writeJSON(w, http.StatusOK, struct {
		Name    string `json:"name"`
		Version string `json:"version"`
		targetJSON
		Governed bool       `json:"governed"`
		Passed   bool       `json:"passed"`
		Gates    []gateJSON `json:"gates"`
	}{e.Name, strconv.FormatInt(e.Version, 10), targetOut(e.Target), e.Governed, e.Passed(), gates})
}

type auditEntryJSON struct {
	ID            int64           `json:"id"`
	Time          int64           `json:"time"`
	Actor         string          `json:"actor"`
	Action        string          `json:"action"`
	Target        string          `json:"target"`
	TargetType    string          `json:"target_type"`
	TargetName    string          `json:"target_name"`
	TargetVersion int64           `json:"target_version,omitempty"`
	Before        json.RawMessage `json:"before"`
	After         json.RawMessage `json:"after"`
}

// listAudit answers GET /api/v1/audit?target=&action=&actor=&since=&until=
// &max_results=&page_token=, newest first. since and until are
// milliseconds since the epoch or RFC 3339 times.
func (h *Handler) listAudit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := audit.Filter{Action: q.Get("action"), Actor: q.Get("actor"), PageToken: q.Get("page_token")}
	if s := q.Get("target"); s != "" {
		t, err := audit.ParseTarget(s)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		f.Target = &t
	}
	var err error
	if f.Since, err = timeParam("since", q.Get("since")); err != nil {
		h.fail(w, r, err)
		return
	}
	if f.Until, err = timeParam("until", q.Get("until")); err != nil {
		h.fail(w, r, err)
		return
	}
	if s := q.Get("max_results"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			h.fail(w, r, errs.Invalid("max_results %q: must be a whole number from 1 to %d", s, audit.MaxListResults))
			return
		}
		f.MaxResults = n
	}
	entries, next, err := h.Audit.List(r.Context(), f)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := make([]auditEntryJSON, len(entries))
	for i, e := range entries {
		out[i] = auditEntryJSON{e.ID, e.Time, e.Actor, e.Action, e.Target.String(), e.Target.Type, e.Target.Name, e.Target.Version, e.Before, e.After}
		if out[i].Before == nil {
			out[i].Before = json.RawMessage("null")
		}
		if out[i].After == nil {
			out[i].After = json.RawMessage("null")
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": out, "next_page_token": next})
}

func timeParam(field, s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= 0 {
		return n, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return 0, errs.Invalid("%s %q: must be milliseconds since the epoch or an RFC 3339 time such as 2026-01-02T15:04:05Z", field, s)
	}
	return t.UnixMilli(), nil
}
