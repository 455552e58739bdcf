package triggers

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/pipelines/runs"
	"github.com/slipwayml/slipway/internal/store"
	"github.com/slipwayml/slipway/internal/store/storetest"
)

const secret = "s3cret-s3cret-s3cret"

const githubPush = `{"ref":"refs/heads/main","before":"1111111111111111111111111111111111111111",
"after":"8f3c2a1b9d0e4f5a6b7c8d9e0f1a2b3c4d5e6f70","deleted":false,
"repository":{"full_name":"acme/credit","name":"credit"},"pusher":{"name":"octocat","email":"o@example.com"},
"sender":{"login":"octocat"}}`

const gitlabPush = `{"object_kind":"push","event_name":"push","ref":"refs/heads/main",
"before":"1111111111111111111111111111111111111111","after":"da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
"checkout_sha":"da1560886d4f094c3e6c9ef40349f7d38b5d27d7","user_name":"John Smith","user_username":"jsmith",
"project":{"path_with_namespace":"mike/diaspora"}}`

func githubSign(key, body string) string {
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write([]byte(body))
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

func headers(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

func (f *fixture) webhook(secret, branch string) {
	f.t.Helper()
	if _, err := f.s.SetWebhook(f.ctx, "nightly", secret, branch, "alice"); err != nil {
		f.t.Fatal(err)
	}
}

// A GitHub push signed with the pipeline's secret queues a run that
// records the repository, ref, commit and pusher; anything unsigned or
// signed otherwise is refused and queues nothing.
func TestGitHubWebhook(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.put("name: unsigned\nsteps:\n  go:\n    command: echo hi\n")
		f.webhook(secret, "")

		refused := []struct {
			name     string
			pipeline string
			h        http.Header
		}{
			{"no signature", "nightly", headers("X-GitHub-Event", "push")},
			{"bad signature", "nightly", headers("X-GitHub-Event", "push", "X-Hub-Signature-256", githubSign("another-secret-value", githubPush))},
			{"not hex", "nightly", headers("X-GitHub-Event", "push", "X-Hub-Signature-256", "sha256=zz")},
			{"sha1 form", "nightly", headers("X-GitHub-Event", "push", "X-Hub-Signature-256", strings.Replace(githubSign(secret, githubPush), "sha256=", "sha1=", 1))},
			{"signed for another body", "nightly", headers("X-GitHub-Event", "push", "X-Hub-Signature-256", githubSign(secret, githubPush+" "))},
			{"no secret set", "unsigned", headers("X-GitHub-Event", "push", "X-Hub-Signature-256", githubSign("", githubPush))},
			{"unknown pipeline", "nope", headers("X-GitHub-Event", "push", "X-Hub-Signature-256", githubSign(secret, githubPush))},
		}
		for _, c := range refused {
			_, err := f.s.Webhook(f.ctx, c.pipeline, c.h, []byte(githubPush))
			if !errs.Is(err, errs.Unauthenticated) {
				t.Errorf("%s: %v, want unauthenticated", c.name, err)
			}
		}
		if list, _, _ := f.runs.ListRuns(f.ctx, runs.ListRunsRequest{}); len(list) != 0 {
			t.Fatalf("refused deliveries queued %d runs", len(list))
		}

		h := headers("X-GitHub-Event", "push", "X-Hub-Signature-256", githubSign(secret, githubPush), "X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
		run, err := f.s.Webhook(f.ctx, "nightly", h, []byte(githubPush))
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"provider": "github", "repository": "acme/credit", "ref": "refs/heads/main",
			"commit": "8f3c2a1b9d0e4f5a6b7c8d9e0f1a2b3c4d5e6f70", "pusher": "octocat", "delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958"}
		if run.Status != runs.Queued || run.Trigger.Kind != runs.TriggerWebhook || !equal(run.Trigger.Detail, want) {
			t.Fatalf("webhook run: %s %+v, want detail %v", run.Status, run.Trigger, want)
		}

		// A ping (sent when the webhook is created) and other events are
		// answered without a run, but only when signed.
		ping := `{"zen":"Keep it logically awesome.","hook_id":1}`
		res, err := f.s.HandleWebhook(f.ctx, "nightly", headers("X-GitHub-Event", "ping", "X-Hub-Signature-256", githubSign(secret, ping)), []byte(ping))
		if err != nil || res.Run != nil || !strings.Contains(res.Ignored, "ping") {
			t.Errorf("ping: %+v %v", res, err)
		}
		if _, err := f.s.HandleWebhook(f.ctx, "nightly", headers("X-GitHub-Event", "ping"), []byte(ping)); !errs.Is(err, errs.Unauthenticated) {
			t.Errorf("unsigned ping: %v", err)
		}
		res, err = f.s.HandleWebhook(f.ctx, "nightly", headers("X-GitHub-Event", "issues", "X-Hub-Signature-256", githubSign(secret, ping)), []byte(ping))
		if err != nil || res.Run != nil || res.Ignored == "" {
			t.Errorf("issues event: %+v %v", res, err)
		}

		// GitHub's form content type carries the JSON in a payload field;
		// the signature covers the form body.
		form := "payload=" + url.QueryEscape(githubPush)
		h = headers("X-GitHub-Event", "push", "X-Hub-Signature-256", githubSign(secret, form), "Content-Type", "application/x-www-form-urlencoded")
		if run, err := f.s.Webhook(f.ctx, "nightly", h, []byte(form)); err != nil || run.Trigger.Detail["commit"] != want["commit"] {
			t.Errorf("form-encoded push: %+v %v", run.Trigger, err)
		}

		// JSON sent with the form content type (as curl -d does) is JSON.
		h = headers("X-GitHub-Event", "push", "X-Hub-Signature-256", githubSign(secret, githubPush), "Content-Type", "application/x-www-form-urlencoded")
		if run, err := f.s.Webhook(f.ctx, "nightly", h, []byte(githubPush)); err != nil || run.Trigger.Detail["commit"] != want["commit"] {
			t.Errorf("JSON with a form content type: %+v %v", run.Trigger, err)
		}

		// A signed body that is not a push payload is a bad request.
		h = headers("X-GitHub-Event", "push", "X-Hub-Signature-256", githubSign(secret, "[1]"))
		if _, err := f.s.Webhook(f.ctx, "nightly", h, []byte("[1]")); !errs.Is(err, errs.InvalidArgument) {
			t.Errorf("array body: %v", err)
		}
		// A push that deletes a branch has nothing to run.
		del := `{"ref":"refs/heads/gone","after":"0000000000000000000000000000000000000000","deleted":true,"repository":{"full_name":"acme/credit"}}`
		res, err = f.s.HandleWebhook(f.ctx, "nightly", headers("X-GitHub-Event", "push", "X-Hub-Signature-256", githubSign(secret, del)), []byte(del))
		if err != nil || res.Run != nil || !strings.Contains(res.Ignored, "deleted") {
			t.Errorf("branch deletion: %+v %v", res, err)
		}
		if n := len(f.queued("nightly")); n != 3 {
			t.Errorf("%d runs queued, want 3", n)
		}
	})
}

// GitLab sends the secret token itself, or (with a signing token) a
// Standard Webhooks signature over id.timestamp.body.
func TestGitLabWebhook(t *testing.T) {
	f := newFixture(t, storetest.SQLite(t))
	f.webhook(secret, "")
	if _, err := f.s.Webhook(f.ctx, "nightly", headers("X-Gitlab-Event", "Push Hook", "X-Gitlab-Token", "wrong-token-wrong-token"), []byte(gitlabPush)); !errs.Is(err, errs.Unauthenticated) {
		t.Fatalf("bad token: %v", err)
	}
	run, err := f.s.Webhook(f.ctx, "nightly", headers("X-Gitlab-Event", "Push Hook", "X-Gitlab-Token", secret, "X-Gitlab-Event-UUID", "u-1"), []byte(gitlabPush))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"provider": "gitlab", "repository": "mike/diaspora", "ref": "refs/heads/main",
		"commit": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7", "pusher": "jsmith", "delivery": "u-1"}
	if run.Trigger.Kind != runs.TriggerWebhook || !equal(run.Trigger.Detail, want) {
		t.Fatalf("gitlab run: %+v, want %v", run.Trigger, want)
	}
	res, err := f.s.HandleWebhook(f.ctx, "nightly", headers("X-Gitlab-Event", "Merge Request Hook", "X-Gitlab-Token", secret), []byte(`{}`))
	if err != nil || res.Run != nil || res.Ignored == "" {
		t.Errorf("merge request event: %+v %v", res, err)
	}

	// Signed webhooks: the signing token is whsec_ + base64 of the key.
	key := []byte("0123456789abcdef0123456789abcdef")
	signing := "whsec_" + base64.StdEncoding.EncodeToString(key)
	f.webhook(signing, "")
	now := f.clock.Now().Unix()
	sign := func(id string, ts int64, body string) string {
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(id + "." + strconv.FormatInt(ts, 10) + "." + body))
		return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	}
	signed := func(id string, ts int64, sig string) http.Header {
		return headers("X-Gitlab-Event", "Push Hook", "webhook-id", id, "webhook-timestamp", strconv.FormatInt(ts, 10), "webhook-signature", sig)
	}
	for name, h := range map[string]http.Header{
		"stale":           signed("msg_1", now-600, sign("msg_1", now-600, gitlabPush)),
		"other id":        signed("msg_2", now, sign("msg_1", now, gitlabPush)),
		"bad signature":   signed("msg_1", now, "v1,"+base64.StdEncoding.EncodeToString(make([]byte, 32))),
		"the old token":   headers("X-Gitlab-Event", "Push Hook", "X-Gitlab-Token", secret),
		"good token, bad": headers("X-Gitlab-Event", "Push Hook", "X-Gitlab-Token", signing, "webhook-id", "m", "webhook-timestamp", strconv.FormatInt(now, 10), "webhook-signature", "v1,AAAA"),
	} {
		if _, err := f.s.Webhook(f.ctx, "nightly", h, []byte(gitlabPush)); !errs.Is(err, errs.Unauthenticated) {
			t.Errorf("%s: %v, want unauthenticated", name, err)
		}
	}
	h := signed("msg_1", now, "v1,AAAA "+sign("msg_1", now, gitlabPush))
	run, err = f.s.Webhook(f.ctx, "nightly", h, []byte(gitlabPush))
	if err != nil || run.Trigger.Detail["delivery"] != "msg_1" {
		t.Fatalf("signed push: %+v %v", run.Trigger, err)
	}
	if n := len(f.queued("nightly")); n != 2 {
		t.Errorf("%d runs queued, want 2", n)
	}
}

// A branch filter lets only matching branches start runs; a paused
// webhook starts none; removing the webhook refuses deliveries.
func TestWebhookBranchFilterPauseAndRemove(t *testing.T) {
	f := newFixture(t, storetest.SQLite(t))
	if _, err := f.s.SetWebhook(f.ctx, "nightly", "short", "", ""); !errs.Is(err, errs.InvalidArgument) {
		t.Errorf("short secret: %v", err)
	}
	if _, err := f.s.SetWebhook(f.ctx, "nightly", secret, "[", ""); !errs.Is(err, errs.InvalidArgument) {
		t.Errorf("bad branch glob: %v", err)
	}
	if _, err := f.s.SetWebhook(f.ctx, "nope", secret, "", ""); !errs.Is(err, errs.NotFound) {
		t.Errorf("unknown pipeline: %v", err)
	}
	w, err := f.s.SetWebhook(f.ctx, "nightly", secret, "release/*", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if !w.HasSecret || w.Trigger == nil || w.Trigger.Branch != "release/*" || w.Trigger.Kind != KindWebhook {
		t.Fatalf("webhook: %+v", w)
	}
	deliver := func(ref string) WebhookResult {
		t.Helper()
		body := strings.Replace(githubPush, "refs/heads/main", ref, 1)
		res, err := f.s.HandleWebhook(f.ctx, "nightly", headers("X-GitHub-Event", "push", "X-Hub-Signature-256", githubSign(secret, body)), []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := deliver("refs/heads/main"); res.Run != nil || !strings.Contains(res.Ignored, "branch filter") {
		t.Errorf("push to main with filter release/*: %+v", res)
	}
	if res := deliver("refs/tags/release/1"); res.Run != nil {
		t.Errorf("tag push matched a branch filter")
	}
	if res := deliver("refs/heads/release/1.2"); res.Run == nil {
		t.Errorf("push to release/1.2: %+v", res)
	}
	if got := f.get(w.Trigger.ID); got.LastRunID == "" {
		t.Errorf("the webhook row does not show its last run")
	}
	// Setting it again keeps one row.
	if w, err = f.s.SetWebhook(f.ctx, "nightly", secret, "", "alice"); err != nil || w.Trigger.Branch != "" {
		t.Fatalf("filter cleared: %+v %v", w, err)
	}
	if list, _ := f.s.List(f.ctx, "nightly"); len(list) != 1 {
		t.Fatalf("%d trigger rows after setting the webhook twice", len(list))
	}
	if _, err := f.s.SetEnabled(f.ctx, w.Trigger.ID, false); err != nil {
		t.Fatal(err)
	}
	if res := deliver("refs/heads/main"); res.Run != nil || !strings.Contains(res.Ignored, "paused") {
		t.Errorf("paused webhook: %+v", res)
	}
	if err := f.s.Delete(f.ctx, w.Trigger.ID); err != nil {
		t.Fatal(err)
	}
	body := githubPush
	if _, err := f.s.Webhook(f.ctx, "nightly", headers("X-GitHub-Event", "push", "X-Hub-Signature-256", githubSign(secret, body)), []byte(body)); !errs.Is(err, errs.Unauthenticated) {
		t.Errorf("after deleting the webhook: %v", err)
	}
	if n := len(f.queued("nightly")); n != 1 {
		t.Errorf("%d runs queued, want 1", n)
	}
}
