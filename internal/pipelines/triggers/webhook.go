package triggers

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/pipelines/runs"
)

// Webhook providers.
const (
	GitHub = "github"
	GitLab = "gitlab"
)

// Headers of the webhooks Slipway accepts.
const (
	// GitHub: the hex HMAC-SHA256 of the body under the secret, as
	// "sha256=<hex>", and the event name ("push", "ping", ...).
	HeaderGitHubSignature = "X-Hub-Signature-256"
	HeaderGitHubEvent     = "X-GitHub-Event"
	HeaderGitHubDelivery  = "X-GitHub-Delivery"
	// GitLab: the secret token itself, and the event name ("Push Hook").
	HeaderGitLabToken = "X-Gitlab-Token"
	HeaderGitLabEvent = "X-Gitlab-Event"
	HeaderGitLabUUID  = "X-Gitlab-Event-UUID"
	// GitLab's signed webhooks follow the Standard Webhooks scheme:
	// "v1,<base64 HMAC-SHA256 of id.timestamp.body>" under the signing
	// token (whsec_<base64 key>).
	HeaderWebhookID        = "Webhook-Id"
	HeaderWebhookTimestamp = "Webhook-Timestamp"
	HeaderWebhookSignature = "Webhook-Signature"
)

// SignatureTolerance is how far a signed webhook's timestamp may be from
// the server's clock: older deliveries are refused as replays.
const SignatureTolerance = 5 * time.Minute

// Webhook is a pipeline's push webhook as the API shows it: never its
// secret.
type Webhook struct {
	Pipeline  string `json:"pipeline"`
	HasSecret bool   `json:"has_secret"`
	// Trigger is the webhook's row (branch filter, paused or not), set
	// while a secret is.
	Trigger *Trigger `json:"trigger,omitempty"`
}

// SetWebhook sets the secret that push webhooks for the pipeline must be
// signed with, and an optional branch filter (a glob on the branch name:
// "main", "release/*"); pushes to other branches, and tag pushes when a
// filter is set, are answered without starting a run. An empty secret
// turns webhooks off.
func (s *Service) SetWebhook(ctx context.Context, pipeline, secret, branch, by string) (Webhook, error) {
	if secret != "" && len(secret) < MinSecretLength {
		return Webhook{}, errs.Invalid("secret: shorter than %d characters; use a long random value (openssl rand -hex 32)", MinSecretLength)
	}
	if len(secret) > MaxSecretLength {
		return Webhook{}, errs.Invalid("secret: longer than %d characters", MaxSecretLength)
	}
	if secret == "" && branch != "" {
		return Webhook{}, errs.Invalid("branch: a branch filter needs a secret; an empty secret turns the webhook off")
	}
	if err := checkBranch(branch); err != nil {
		return Webhook{}, err
	}
	if err := s.pipelines.SetWebhookSecret(ctx, pipeline, secret); err != nil {
		return Webhook{}, err
	}
	// s.tx retries a concurrent first insert (the partial unique index
	// allows one webhook row per pipeline) as an update.
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if secret == "" {
			_, err := tx.ExecContext(ctx, s.db.Q(`DELETE FROM pipeline_triggers WHERE pipeline = ? AND kind = ?`), pipeline, KindWebhook)
			return err
		}
		res, err := tx.ExecContext(ctx, s.db.Q(`UPDATE pipeline_triggers SET branch = ? WHERE pipeline = ? AND kind = ?`), branch, pipeline, KindWebhook)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			return nil
		}
		return s.insert(ctx, tx, Trigger{ID: newID(), Pipeline: pipeline, Kind: KindWebhook, Branch: branch, Enabled: true,
			CreatedBy: by, CreatedTime: s.Now().UnixMilli()})
	})
	if err != nil {
		return Webhook{}, errs.Wrap(err, "saving webhook")
	}
	return s.GetWebhook(ctx, pipeline)
}

// GetWebhook says whether the pipeline takes push webhooks, and how.
func (s *Service) GetWebhook(ctx context.Context, pipeline string) (Webhook, error) {
	secret, err := s.pipelines.WebhookSecret(ctx, pipeline)
	if err != nil {
		return Webhook{}, err
	}
	w := Webhook{Pipeline: pipeline, HasSecret: secret != ""}
	t, err := s.webhookRow(ctx, pipeline)
	if err != nil {
		return Webhook{}, err
	}
	w.Trigger = t
	return w, nil
}

func (s *Service) webhookRow(ctx context.Context, pipeline string) (*Trigger, error) {
	t, err := scanTrigger(s.db.Read.QueryRowContext(ctx, s.db.Q(`SELECT `+triggerColumns+` FROM pipeline_triggers
		WHERE pipeline = ? AND kind = ?`), pipeline, KindWebhook))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, errs.Wrap(err, "reading webhook")
	}
	return &t, nil
}

// WebhookResult is what a webhook delivery did: queued Run, or nothing,
// with the reason in Ignored (a ping, another branch, a paused webhook).
type WebhookResult struct {
	Provider string    `json:"provider"`
	Run      *runs.Run `json:"run,omitempty"`
	Ignored  string    `json:"ignored,omitempty"`
}

// Webhook handles a push webhook delivery and returns the run it queued;
// a delivery that starts nothing (a ping) returns a zero Run and no error.
func (s *Service) Webhook(ctx context.Context, pipeline string, h http.Header, body []byte) (runs.Run, error) {
	res, err := s.HandleWebhook(ctx, pipeline, h, body)
	if err != nil || res.Run == nil {
		return runs.Run{}, err
	}
	return *res.Run, nil
}

// HandleWebhook checks a delivery's signature against the pipeline's
// secret, then queues a run for a push. A missing or bad signature, or a
// pipeline without a secret, is Unauthenticated and queues nothing.
func (s *Service) HandleWebhook(ctx context.Context, pipeline string, h http.Header, body []byte) (WebhookResult, error) {
	if len(body) > MaxWebhookBytes {
		return WebhookResult{}, errs.New(errs.ResourceExhausted, "request body: larger than %d bytes", MaxWebhookBytes)
	}
	secret, err := s.pipelines.WebhookSecret(ctx, pipeline)
	if err != nil && !errs.Is(err, errs.NotFound) {
		return WebhookResult{}, err
	}
	if secret == "" {
		// The same answer whether or not the pipeline exists: whoever can
		// call this URL learns nothing about which pipelines there are.
		return WebhookResult{}, errs.New(errs.Unauthenticated,
			"pipeline %q takes no webhooks: it is not registered or has no webhook secret (set one with `slipway pipeline webhook %s --secret-env VAR`)", pipeline, pipeline)
	}
	provider, err := s.verify(h, body, secret)
	if err != nil {
		s.Log.Warn("pipeline webhook refused", "pipeline", pipeline, "err", errs.Message(err))
		return WebhookResult{}, err
	}
	res := WebhookResult{Provider: provider}
	var event string
	switch provider {
	case GitHub:
		event = h.Get(HeaderGitHubEvent)
		switch event {
		case "push":
		case "ping":
			res.Ignored = "ping: the webhook is set up; pushes will start runs"
			return res, nil
		case "":
			return res, errs.Invalid("%s: header is missing; this URL takes GitHub push events", HeaderGitHubEvent)
		default:
			res.Ignored = "event " + strconv.Quote(event) + " starts no run; only push events do"
			return res, nil
		}
	case GitLab:
		event = h.Get(HeaderGitLabEvent)
		switch event {
		case "Push Hook", "Tag Push Hook":
		case "":
			return res, errs.Invalid("%s: header is missing; this URL takes GitLab push events", HeaderGitLabEvent)
		default:
			res.Ignored = "event " + strconv.Quote(event) + " starts no run; only Push Hook and Tag Push Hook do"
			return res, nil
		}
	}
	push, err := parsePush(provider, h, body)
	if err != nil {
		return res, err
	}
	if push.deleted {
		res.Ignored = "the push deleted " + push.ref + "; there is nothing to run"
		return res, nil
	}
	row, err := s.webhookRow(ctx, pipeline)
	if err != nil {
		return res, err
	}
	if row != nil && !row.Enabled {
		res.Ignored = "the webhook is paused (slipway schedules resume " + row.ID + ")"
		return res, nil
	}
	if row != nil && row.Branch != "" {
		branch, isBranch := strings.CutPrefix(push.ref, "refs/heads/")
		if ok, _ := path.Match(row.Branch, branch); !isBranch || !ok {
			res.Ignored = "ref " + strconv.Quote(push.ref) + " does not match the branch filter " + strconv.Quote(row.Branch)
			return res, nil
		}
	}
	detail := map[string]string{"provider": provider, "repository": push.repository, "ref": push.ref, "commit": push.commit, "pusher": push.pusher}
	if push.delivery != "" {
		detail["delivery"] = push.delivery
	}
	var id string
	err = s.tx(ctx, func(tx *sql.Tx) (err error) {
		id, err = s.pipelines.Enqueue(ctx, tx, runs.StartRequest{Pipeline: pipeline,
			Trigger: runs.Trigger{Kind: runs.TriggerWebhook, Detail: detail}})
		if err != nil || row == nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.db.Q(`UPDATE pipeline_triggers SET last_fired = ?, last_run_id = ?, last_error = '' WHERE trigger_id = ?`),
			s.Now().UnixMilli(), id, row.ID)
		return err
	})
	if err != nil {
		return res, errs.Wrap(err, "queuing run")
	}
	s.pipelines.Wake()
	s.Log.Info("pipeline run queued by a push webhook", "pipeline", pipeline, "run", id, "provider", provider,
		"repository", push.repository, "ref", push.ref, "commit", push.commit)
	run, err := s.pipelines.GetRun(ctx, id)
	if err != nil {
		return res, err
	}
	res.Run = &run
	return res, nil
}

func unauthenticated(format string, args ...any) error {
	return errs.New(errs.Unauthenticated, format, args...)
}

// verify checks the delivery's signature and says who sent it. GitHub's
// signature is checked when present; else a Standard Webhooks signature
// (GitLab's signing token); else GitLab's secret token. Every comparison
// takes the same time whatever the bytes compared.
func (s *Service) verify(h http.Header, body []byte, secret string) (string, error) {
	switch {
	case h.Get(HeaderGitHubSignature) != "":
		hexSig, ok := strings.CutPrefix(h.Get(HeaderGitHubSignature), "sha256=")
		sig, err := hex.DecodeString(hexSig)
		if !ok || err != nil {
			return "", unauthenticated("%s: must be sha256=<hex HMAC-SHA256 of the body>", HeaderGitHubSignature)
		}
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(body)
		if !hmac.Equal(sig, mac.Sum(nil)) {
			return "", unauthenticated("%s: the signature does not match the body under the pipeline's webhook secret", HeaderGitHubSignature)
		}
		return GitHub, nil
	case h.Get(HeaderWebhookSignature) != "":
		if err := s.verifyStandard(h, body, secret); err != nil {
			return "", err
		}
		if h.Get(HeaderGitLabEvent) == "" {
			return "", errs.Invalid("%s: header is missing; this URL takes GitHub and GitLab push events", HeaderGitLabEvent)
		}
		return GitLab, nil
	case h.Get(HeaderGitLabToken) != "":
		got := sha256.Sum256([]byte(h.Get(HeaderGitLabToken)))
		want := sha256.Sum256([]byte(secret))
		if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			return "", unauthenticated("%s: does not match the pipeline's webhook secret", HeaderGitLabToken)
		}
		return GitLab, nil
	}
	return "", unauthenticated("the delivery is not signed: GitHub sends %s, GitLab %s or %s; set the pipeline's webhook secret in the repository's webhook settings",
		HeaderGitHubSignature, HeaderGitLabToken, HeaderWebhookSignature)
}

// verifyStandard checks a Standard Webhooks signature, as GitLab sends
// with a signing token: webhook-signature holds space-separated
// "v1,<base64>" entries, each an HMAC-SHA256 of "id.timestamp.body" under
// the key the secret encodes ("whsec_<base64>"; any other secret is used
// as its own bytes).
func (s *Service) verifyStandard(h http.Header, body []byte, secret string) error {
	id, ts := h.Get(HeaderWebhookID), h.Get(HeaderWebhookTimestamp)
	if id == "" || ts == "" {
		return unauthenticated("%s needs %s and %s", HeaderWebhookSignature, HeaderWebhookID, HeaderWebhookTimestamp)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return unauthenticated("%s: %q is not Unix seconds", HeaderWebhookTimestamp, ts)
	}
	if d := s.Now().Sub(time.Unix(sec, 0)); d > SignatureTolerance || d < -SignatureTolerance {
		return unauthenticated("%s: %s is more than %s from the server's clock; a delivery is accepted only when fresh", HeaderWebhookTimestamp, ts, SignatureTolerance)
	}
	key := []byte(secret)
	if enc, ok := strings.CutPrefix(secret, "whsec_"); ok {
		if k, err := base64.StdEncoding.DecodeString(enc); err == nil {
			key = k
		}
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	for _, entry := range strings.Fields(h.Get(HeaderWebhookSignature)) {
		b64, ok := strings.CutPrefix(entry, "v1,")
		if !ok {
			continue
		}
		if sig, err := base64.StdEncoding.DecodeString(b64); err == nil && hmac.Equal(sig, want) {
			return nil
		}
	}
	return unauthenticated("%s: no v1 signature matches the body under the pipeline's webhook secret", HeaderWebhookSignature)
}

type push struct {
	repository, ref, commit, pusher, delivery string
	deleted                                   bool
}

const zeroSHA = "0000000000000000000000000000000000000000"

// parsePush reads the parts of a push payload a run records. GitHub may
// send the JSON as a form field (payload=...) when the webhook's content
// type is application/x-www-form-urlencoded; a JSON body sent with that
// type (curl -d does) is read as JSON.
func parsePush(provider string, h http.Header, body []byte) (push, error) {
	if strings.HasPrefix(h.Get("Content-Type"), "application/x-www-form-urlencoded") && !bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")) {
		form, err := url.ParseQuery(string(body))
		if err != nil || form.Get("payload") == "" {
			return push{}, errs.Invalid("request body: a form body must carry the push event as its payload field")
		}
		body = []byte(form.Get("payload"))
	}
	var p struct {
		Ref         string  `json:"ref"`
		After       string  `json:"after"`
		CheckoutSHA *string `json:"checkout_sha"`
		Deleted     bool    `json:"deleted"`
		Repository  struct {
			FullName string `json:"full_name"`
		} `json:"repository"`
		Project struct {
			PathWithNamespace string `json:"path_with_namespace"`
		} `json:"project"`
		Pusher struct {
			Name  string `json:"name"`
			Login string `json:"login"`
		} `json:"pusher"`
		Sender struct {
			Login string `json:"login"`
		} `json:"sender"`
		UserUsername string `json:"user_username"`
		UserName     string `json:"user_name"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&p); err != nil {
		return push{}, errs.Invalid("request body: not a %s push event: %v", provider, strings.TrimPrefix(err.Error(), "json: "))
	}
	if p.Ref == "" {
		return push{}, errs.Invalid("request body: ref: is missing; not a %s push event", provider)
	}
	out := push{ref: p.Ref, commit: p.After}
	switch provider {
	case GitHub:
		out.repository = p.Repository.FullName
		out.pusher = first(p.Pusher.Name, p.Pusher.Login, p.Sender.Login)
		out.delivery = h.Get(HeaderGitHubDelivery)
		out.deleted = p.Deleted || p.After == zeroSHA
	case GitLab:
		out.repository = p.Project.PathWithNamespace
		out.pusher = first(p.UserUsername, p.UserName)
		if p.CheckoutSHA != nil && *p.CheckoutSHA != "" {
			out.commit = *p.CheckoutSHA
		}
		out.delivery = first(h.Get(HeaderWebhookID), h.Get(HeaderGitLabUUID))
		out.deleted = p.After == zeroSHA && (p.CheckoutSHA == nil || *p.CheckoutSHA == "")
	}
	for _, f := range []*string{&out.repository, &out.ref, &out.commit, &out.pusher, &out.delivery} {
		*f = clip(*f, 256)
	}
	return out, nil
}

func first(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// clip bounds a value taken from a payload, on a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
