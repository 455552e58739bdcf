package client

import (
	"context"
	"encoding/json"
	"iter"
	"net/url"
	"strconv"
)

// Governance (Slipway only): promotion policies, approvals, a dry run of a
// promotion's gates, and the audit log. A promotion itself is
// SetRegisteredModelAlias or TransitionModelVersionStage; when the model's
// policy is not met the server refuses it with CodeInvalidState and a
// message naming every unmet gate.

// PromotionPolicy holds the gates a version must pass to take an alias
// (Aliases) or enter a stage (Stages), keyed by alias or stage name.
type PromotionPolicy struct {
	Aliases map[string]PromotionGates `json:"aliases,omitempty"`
	Stages  map[string]PromotionGates `json:"stages,omitempty"`
}

// PromotionGates are the conditions of one target; all must hold.
type PromotionGates struct {
	// Metrics are thresholds on the version's source run.
	Metrics []MetricGate `json:"metrics,omitempty"`
	// Tags must be set on the model version with exactly these values.
	Tags map[string]string `json:"tags,omitempty"`
	// Approvals is how many distinct approvers (not the registrant) must
	// have approved the version for this target.
	Approvals int `json:"approvals,omitempty"`
	// NoRegression compares the version with the target's current holder.
	NoRegression *RegressionGate `json:"no_regression,omitempty"`
}

// MetricGate requires Metric Op Value; Op is one of >=, >, <=, <, ==.
type MetricGate struct {
	Metric string  `json:"metric"`
	Op     string  `json:"op"`
	Value  float64 `json:"value"`
}

// RegressionGate requires Metric to be no worse than the current holder's
// by more than Tolerance.
type RegressionGate struct {
	Metric         string  `json:"metric"`
	HigherIsBetter bool    `json:"higher_is_better"`
	Tolerance      float64 `json:"tolerance,omitempty"`
}

// StoredPolicy is a model's policy with who last set it and when.
type StoredPolicy struct {
	Name        string          `json:"name"`
	Policy      PromotionPolicy `json:"policy"`
	UpdatedTime int64           `json:"updated_time"`
	UpdatedBy   string          `json:"updated_by"`
}

// PromotionTarget is an alias or a legacy stage; set one of the two.
type PromotionTarget struct {
	Alias string `json:"alias,omitempty"`
	Stage string `json:"stage,omitempty"`
}

func (t PromotionTarget) query() url.Values {
	q := url.Values{}
	if t.Alias != "" {
		q.Set("alias", t.Alias)
	}
	if t.Stage != "" {
		q.Set("stage", t.Stage)
	}
	return q
}

// Approval is one user's approval of a version for a target.
type Approval struct {
	PromotionTarget
	Approver     string `json:"approver"`
	ApproverRole string `json:"approver_role"`
	Comment      string `json:"comment,omitempty"`
	CreationTime int64  `json:"creation_time"`
}

// GateResult is one gate's verdict.
type GateResult struct {
	Gate   string `json:"gate"`
	Met    bool   `json:"met"`
	Detail string `json:"detail"`
}

// GateEvaluation says whether a version could be promoted to a target now.
// Governed is false when the policy has no gates for the target.
type GateEvaluation struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	PromotionTarget
	Governed bool         `json:"governed"`
	Passed   bool         `json:"passed"`
	Gates    []GateResult `json:"gates"`
}

func modelPath(name string) string { return "models/" + url.PathEscape(name) }

func versionPath(name, version string) string {
	return modelPath(name) + "/versions/" + url.PathEscape(version)
}

// GetPromotionPolicy returns a model's policy; a model without one answers
// not found.
func (c *Client) GetPromotionPolicy(ctx context.Context, name string) (*StoredPolicy, error) {
	var out StoredPolicy
	if _, err := c.v1(ctx, "GET", modelPath(name)+"/policy", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// SetPromotionPolicy replaces a model's policy. It needs role admin.
func (c *Client) SetPromotionPolicy(ctx context.Context, name string, p PromotionPolicy) (*StoredPolicy, error) {
	var out StoredPolicy
	if _, err := c.v1(ctx, "PUT", modelPath(name)+"/policy", nil, p, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeletePromotionPolicy removes a model's policy. It needs role admin.
func (c *Client) DeletePromotionPolicy(ctx context.Context, name string) error {
	_, err := c.v1(ctx, "DELETE", modelPath(name)+"/policy", nil, nil, nil)
	return err
}

// ApproveModelVersion records the caller's approval of a version for a
// target. It needs role approver or admin, and the caller must not be the
// version's registrant.
func (c *Client) ApproveModelVersion(ctx context.Context, name, version string, target PromotionTarget, comment string) (*Approval, error) {
	var out struct {
		Approval Approval `json:"approval"`
	}
	in := struct {
		PromotionTarget
		Comment string `json:"comment,omitempty"`
	}{target, comment}
	if _, err := c.v1(ctx, "POST", versionPath(name, version)+"/approvals", nil, in, &out); err != nil {
		return nil, err
	}
	return &out.Approval, nil
}

// ListApprovals returns a version's approvals.
func (c *Client) ListApprovals(ctx context.Context, name, version string) ([]Approval, error) {
	var out struct {
		Approvals []Approval `json:"approvals"`
	}
	if _, err := c.v1(ctx, "GET", versionPath(name, version)+"/approvals", nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Approvals, nil
}

// EvaluateGates is a dry run of promoting a version to target: each gate
// with whether it is met and why. Nothing changes.
func (c *Client) EvaluateGates(ctx context.Context, name, version string, target PromotionTarget) (*GateEvaluation, error) {
	var out GateEvaluation
	if _, err := c.v1(ctx, "GET", versionPath(name, version)+"/gates", target.query(), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// AuditEntry is one recorded registry or data change. Target is
// models:/NAME, models:/NAME/VERSION, data:NAME or data:NAME@vN; Before
// and After are the JSON state around the change (null before a create and
// after a delete).
type AuditEntry struct {
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

// ListAuditRequest filters the audit log; zero fields select everything.
type ListAuditRequest struct {
	// Target is a model or dataset (with its versions) or one version.
	Target string
	// Action selects actions starting with it, e.g. "registered_model.".
	Action string
	Actor  string
	// Since and Until bound the time in milliseconds: Since <= t < Until.
	Since, Until int64
	MaxResults   int
	PageToken    string
}

// AuditPage is one page of the audit log, newest first.
type AuditPage struct {
	Entries       []AuditEntry `json:"entries"`
	NextPageToken string       `json:"next_page_token"`
}

// ListAudit returns one page of the audit log, newest first.
func (c *Client) ListAudit(ctx context.Context, req ListAuditRequest) (*AuditPage, error) {
	q := url.Values{}
	for k, v := range map[string]string{"target": req.Target, "action": req.Action, "actor": req.Actor, "page_token": req.PageToken} {
		if v != "" {
			q.Set(k, v)
		}
	}
	for k, v := range map[string]int64{"since": req.Since, "until": req.Until, "max_results": int64(req.MaxResults)} {
		if v != 0 {
			q.Set(k, strconv.FormatInt(v, 10))
		}
	}
	var out AuditPage
	if _, err := c.v1(ctx, "GET", "audit", q, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// IterAudit walks the audit log newest first, following page tokens.
func (c *Client) IterAudit(ctx context.Context, req ListAuditRequest) iter.Seq2[AuditEntry, error] {
	return func(yield func(AuditEntry, error) bool) {
		for {
			page, err := c.ListAudit(ctx, req)
			if err != nil {
				yield(AuditEntry{}, err)
				return
			}
			for _, e := range page.Entries {
				if !yield(e, nil) {
					return
				}
			}
			if page.NextPageToken == "" {
				return
			}
			if page.NextPageToken == req.PageToken {
				yield(AuditEntry{}, errRepeatedToken)
				return
			}
			req.PageToken = page.NextPageToken
		}
	}
}
