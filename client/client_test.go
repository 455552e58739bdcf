package client_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/slipwayml/slipway/client"
)

func apiError(t *testing.T, err error) *client.APIError {
	t.Helper()
	var e *client.APIError
	if !errors.As(err, &e) {
		t.Fatalf("want *client.APIError, got %T: %v", err, err)
	}
	return e
}

func TestExperiments(t *testing.T) {
	c, _ := newClient(t)
	ctx := context.Background()

	id, err := c.CreateExperiment(ctx, client.CreateExperimentRequest{Name: "churn", Tags: []client.Tag{{Key: "team", Value: "risk"}}})
	if err != nil {
		t.Fatal(err)
	}
	e, err := c.GetExperiment(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if e.ID != id || e.Name != "churn" || e.LifecycleStage != client.StageActive || e.CreationTime == 0 || e.ArtifactLocation == "" {
		t.Fatalf("GetExperiment = %+v", e)
	}
	if v, ok := e.Tag("team"); !ok || v != "risk" {
		t.Fatalf("tag team = %q, %v", v, ok)
	}
	byName, err := c.GetExperimentByName(ctx, "churn")
	if err != nil || byName.ID != id {
		t.Fatalf("GetExperimentByName = %+v, %v", byName, err)
	}

	_, err = c.CreateExperiment(ctx, client.CreateExperimentRequest{Name: "churn"})
	if e := apiError(t, err); e.Code != client.CodeResourceAlreadyExists || e.StatusCode != 400 || !client.IsAlreadyExists(err) {
		t.Fatalf("duplicate create: %+v", e)
	}

	if err := c.UpdateExperiment(ctx, id, "churn-v2"); err != nil {
		t.Fatal(err)
	}
	if err := c.SetExperimentTag(ctx, id, "owner", "ana"); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteExperimentTag(ctx, id, "team"); err != nil {
		t.Fatal(err)
	}
	e, err = c.GetExperiment(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := e.Tag("team"); ok || e.Name != "churn-v2" {
		t.Fatalf("after update: %+v", e)
	}
	if v, _ := e.Tag("owner"); v != "ana" {
		t.Fatalf("owner tag = %q", v)
	}

	if err := c.DeleteExperiment(ctx, id); err != nil {
		t.Fatal(err)
	}
	deleted, err := c.SearchAllExperiments(ctx, client.SearchExperimentsRequest{ViewType: client.ViewDeletedOnly})
	if err != nil || len(deleted) != 1 || deleted[0].ID != id || deleted[0].LifecycleStage != client.StageDeleted {
		t.Fatalf("deleted experiments = %+v, %v", deleted, err)
	}
	active, err := c.SearchAllExperiments(ctx, client.SearchExperimentsRequest{})
	if err != nil || len(active) != 1 || active[0].Name != "Default" {
		t.Fatalf("active experiments = %+v, %v", active, err)
	}
	if err := c.RestoreExperiment(ctx, id); err != nil {
		t.Fatal(err)
	}
	found, err := c.SearchAllExperiments(ctx, client.SearchExperimentsRequest{Filter: "name = 'churn-v2'"})
	if err != nil || len(found) != 1 || found[0].ID != id {
		t.Fatalf("filtered search = %+v, %v", found, err)
	}
}

func TestSearchPaging(t *testing.T) {
	c, _ := newClient(t)
	ctx := context.Background()

	const n = 7
	var expIDs []string
	for i := range n {
		id, err := c.CreateExperiment(ctx, client.CreateExperimentRequest{Name: fmt.Sprintf("exp-%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		expIDs = append(expIDs, id)
	}
	// Page by hand: 7 experiments plus Default in pages of 3.
	req := client.SearchExperimentsRequest{MaxResults: 3, Filter: "name LIKE 'exp-%'", OrderBy: []string{"name ASC"}}
	var names []string
	pages := 0
	for {
		page, err := c.SearchExperiments(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, e := range page.Experiments {
			names = append(names, e.Name)
		}
		if page.NextPageToken == "" {
			break
		}
		req.PageToken = page.NextPageToken
	}
	if pages != 3 || len(names) != n || names[0] != "exp-0" || names[n-1] != "exp-6" {
		t.Fatalf("%d pages, names %v", pages, names)
	}
	all, err := c.SearchAllExperiments(ctx, client.SearchExperimentsRequest{MaxResults: 2})
	if err != nil || len(all) != n+1 {
		t.Fatalf("SearchAllExperiments: %d, %v", len(all), err)
	}
	// Breaking out of the iterator stops fetching.
	count := 0
	for _, err := range c.IterExperiments(ctx, client.SearchExperimentsRequest{MaxResults: 2}) {
		if err != nil {
			t.Fatal(err)
		}
		if count++; count == 3 {
			break
		}
	}

	var runIDs []string
	for i := range n {
		run, err := c.CreateRun(ctx, client.CreateRunRequest{ExperimentID: expIDs[i%2], RunName: fmt.Sprintf("run-%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.LogMetric(ctx, run.Info.RunID, client.Metric{Key: "auc", Value: float64(i) / 10}); err != nil {
			t.Fatal(err)
		}
		runIDs = append(runIDs, run.Info.RunID)
	}
	runs, err := c.SearchAllRuns(ctx, client.SearchRunsRequest{
		ExperimentIDs: expIDs[:2], MaxResults: 2, OrderBy: []string{"metrics.auc DESC"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != n {
		t.Fatalf("SearchAllRuns returned %d runs, want %d", len(runs), n)
	}
	for i, r := range runs {
		if want := runIDs[n-1-i]; r.Info.RunID != want {
			t.Fatalf("run %d = %s, want %s (ordered by auc desc)", i, r.Info.RunID, want)
		}
	}
	filtered, err := c.SearchAllRuns(ctx, client.SearchRunsRequest{ExperimentIDs: expIDs[:2], Filter: "metrics.auc > 0.35", MaxResults: 1})
	if err != nil || len(filtered) != 3 {
		t.Fatalf("filtered runs: %d, %v", len(filtered), err)
	}
	page, err := c.SearchRuns(ctx, client.SearchRunsRequest{ExperimentIDs: expIDs[:1], MaxResults: 3})
	if err != nil || len(page.Runs) != 3 || page.NextPageToken == "" {
		t.Fatalf("first page: %+v, %v", page, err)
	}
}

func TestRuns(t *testing.T) {
	c, _ := newClient(t)
	ctx := context.Background()

	run, err := c.CreateRun(ctx, client.CreateRunRequest{RunName: "baseline", UserID: "ana", StartTime: 1_700_000_000_000,
		Tags: []client.Tag{{Key: "stage", Value: "dev"}}})
	if err != nil {
		t.Fatal(err)
	}
	id := run.Info.RunID
	if run.Info.ExperimentID != "0" || run.Info.Status != client.RunStatusRunning || run.Info.StartTime != 1_700_000_000_000 ||
		run.Info.EndTime != 0 || run.Info.RunName != "baseline" || !strings.HasPrefix(run.Info.ArtifactURI, "mlflow-artifacts:/") {
		t.Fatalf("CreateRun = %+v", run.Info)
	}

	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.LogParam(ctx, id, "lr", "0.1"))
	must(c.LogMetric(ctx, id, client.Metric{Key: "loss", Value: 0.9, Step: 0}))
	must(c.LogMetric(ctx, id, client.Metric{Key: "loss", Value: 0.4, Step: 1, Timestamp: 1_700_000_000_500}))
	must(c.SetTag(ctx, id, "note", "first try"))
	must(c.LogBatch(ctx, id,
		[]client.Metric{{Key: "auc", Value: 0.81, Step: 1}, {Key: "acc", Value: 0.7}},
		[]client.Param{{Key: "max_depth", Value: "6"}},
		[]client.Tag{{Key: "model", Value: "gbdt"}}))
	must(c.DeleteTag(ctx, id, "stage"))
	must(c.LogInputs(ctx, id, []client.DatasetInput{{
		Tags:    []client.Tag{{Key: "mlflow.data.context", Value: "training"}},
		Dataset: client.Dataset{Name: "churn", Digest: "abc123", SourceType: "local", Source: `{"uri":"data.csv"}`, Schema: `{"cols":[]}`},
	}}))
	must(c.LogModel(ctx, id, `{"artifact_path":"model","flavors":{}}`))

	info, err := c.UpdateRun(ctx, client.UpdateRunRequest{RunID: id, Status: client.RunStatusFinished, EndTime: 1_700_000_060_000, RunName: "baseline-final"})
	if err != nil {
		t.Fatal(err)
	}
	if info.Status != client.RunStatusFinished || info.EndTime != 1_700_000_060_000 || info.RunName != "baseline-final" {
		t.Fatalf("UpdateRun = %+v", info)
	}

	got, err := c.GetRun(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	d := got.Data
	if v, _ := d.Param("lr"); v != "0.1" {
		t.Errorf("param lr = %q", v)
	}
	if v, _ := d.Param("max_depth"); v != "6" {
		t.Errorf("param max_depth = %q", v)
	}
	if m, ok := d.Metric("loss"); !ok || m.Value != 0.4 || m.Step != 1 || m.Timestamp != 1_700_000_000_500 {
		t.Errorf("latest loss = %+v", m)
	}
	if m, ok := d.Metric("auc"); !ok || m.Value != 0.81 || m.Timestamp == 0 {
		t.Errorf("auc = %+v (a zero timestamp is stamped by the client)", m)
	}
	if _, ok := d.Tag("stage"); ok {
		t.Error("deleted tag stage still present")
	}
	if v, _ := d.Tag("note"); v != "first try" {
		t.Errorf("tag note = %q", v)
	}
	if v, _ := d.Tag(client.TagRunName); v != "baseline-final" {
		t.Errorf("run name tag = %q", v)
	}
	if v, _ := d.Tag("mlflow.log-model.history"); !strings.Contains(v, `"artifact_path":"model"`) {
		t.Errorf("log-model history tag = %q", v)
	}
	if len(got.Inputs.DatasetInputs) != 1 || got.Inputs.DatasetInputs[0].Dataset.Digest != "abc123" ||
		got.Inputs.DatasetInputs[0].Tags[0].Value != "training" {
		t.Errorf("inputs = %+v", got.Inputs)
	}

	must(c.DeleteRun(ctx, id))
	if r, err := c.GetRun(ctx, id); err != nil || r.Info.LifecycleStage != client.StageDeleted {
		t.Fatalf("deleted run: %+v, %v", r, err)
	}
	active, err := c.SearchAllRuns(ctx, client.SearchRunsRequest{ExperimentIDs: []string{"0"}})
	if err != nil || len(active) != 0 {
		t.Fatalf("active runs after delete: %d, %v", len(active), err)
	}
	all, err := c.SearchAllRuns(ctx, client.SearchRunsRequest{ExperimentIDs: []string{"0"}, ViewType: client.ViewAll})
	if err != nil || len(all) != 1 {
		t.Fatalf("all runs after delete: %d, %v", len(all), err)
	}
	must(c.RestoreRun(ctx, id))
	if r, err := c.GetRun(ctx, id); err != nil || r.Info.LifecycleStage != client.StageActive {
		t.Fatalf("restored run: %+v, %v", r, err)
	}
}

func TestNonFiniteMetrics(t *testing.T) {
	c, _ := newClient(t)
	ctx := context.Background()
	run, err := c.CreateRun(ctx, client.CreateRunRequest{})
	if err != nil {
		t.Fatal(err)
	}
	id := run.Info.RunID
	if err := c.LogMetric(ctx, id, client.Metric{Key: "nan", Value: math.NaN()}); err != nil {
		t.Fatal(err)
	}
	if err := c.LogBatch(ctx, id, []client.Metric{
		{Key: "pinf", Value: math.Inf(1)}, {Key: "ninf", Value: math.Inf(-1)}, {Key: "nan", Value: math.NaN(), Step: 1},
	}, nil, nil); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetRun(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := got.Data.Metric("nan"); !math.IsNaN(m.Value) {
		t.Errorf("nan = %v", m.Value)
	}
	if m, _ := got.Data.Metric("pinf"); !math.IsInf(m.Value, 1) {
		t.Errorf("pinf = %v", m.Value)
	}
	if m, _ := got.Data.Metric("ninf"); !math.IsInf(m.Value, -1) {
		t.Errorf("ninf = %v", m.Value)
	}
	hist, err := c.GetFullMetricHistory(ctx, id, "nan")
	if err != nil || len(hist) != 2 || !math.IsNaN(hist[0].Value) || !math.IsNaN(hist[1].Value) {
		t.Fatalf("nan history = %+v, %v", hist, err)
	}
	// The SDK's own types must serialise what they read, for CLI --json.
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`"value":"NaN"`)) || !bytes.Contains(b, []byte(`"value":"-Infinity"`)) {
		t.Fatalf("marshalled run = %s", b)
	}
	var back client.Run
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if m, _ := back.Data.Metric("pinf"); !math.IsInf(m.Value, 1) {
		t.Errorf("round trip pinf = %v", m.Value)
	}
}

func TestMetricHistory(t *testing.T) {
	c, _ := newClient(t)
	ctx := context.Background()
	var ids []string
	for range 2 {
		run, err := c.CreateRun(ctx, client.CreateRunRequest{})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, run.Info.RunID)
		var batch []client.Metric
		for step := range 25 {
			batch = append(batch, client.Metric{Key: "loss", Value: 1 / float64(step+1), Step: int64(step), Timestamp: int64(1000 + step)})
		}
		if err := c.LogBatch(ctx, run.Info.RunID, batch, nil, nil); err != nil {
			t.Fatal(err)
		}
	}

	req := client.GetMetricHistoryRequest{RunID: ids[0], MetricKey: "loss", MaxResults: 10}
	var steps []int64
	pages := 0
	for {
		page, err := c.GetMetricHistory(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, m := range page.Metrics {
			steps = append(steps, m.Step)
		}
		if page.NextPageToken == "" {
			break
		}
		req.PageToken = page.NextPageToken
	}
	if pages != 3 || len(steps) != 25 || !slices.IsSorted(steps) {
		t.Fatalf("%d pages, steps %v", pages, steps)
	}
	var viaIter []client.Metric
	for m, err := range c.IterMetricHistory(ctx, client.GetMetricHistoryRequest{RunID: ids[0], MetricKey: "loss", MaxResults: 4}) {
		if err != nil {
			t.Fatal(err)
		}
		viaIter = append(viaIter, m)
	}
	if len(viaIter) != 25 || viaIter[24].Timestamp != 1024 || viaIter[0].Value != 1 {
		t.Fatalf("iterated history: %d points, last %+v", len(viaIter), viaIter[len(viaIter)-1])
	}
	full, err := c.GetFullMetricHistory(ctx, ids[1], "loss")
	if err != nil || len(full) != 25 {
		t.Fatalf("full history: %d, %v", len(full), err)
	}

	start, end := int64(5), int64(14)
	points, err := c.GetMetricHistoryBulkInterval(ctx, client.BulkIntervalRequest{
		RunIDs: ids, MetricKey: "loss", StartStep: &start, EndStep: &end, MaxResults: 5,
	})
	if err != nil {
		t.Fatal(err)
	}
	perRun := map[string]int{}
	for _, p := range points {
		if p.Step < start || p.Step > end || p.Key != "loss" {
			t.Fatalf("point out of range: %+v", p)
		}
		perRun[p.RunID]++
	}
	if len(perRun) != 2 || perRun[ids[0]] == 0 || perRun[ids[0]] > 6 || perRun[ids[1]] == 0 {
		t.Fatalf("points per run = %v", perRun)
	}

	_, err = c.GetMetricHistory(ctx, client.GetMetricHistoryRequest{RunID: ids[0], MetricKey: "loss", PageToken: "garbage!"})
	if e := apiError(t, err); e.Code != client.CodeInvalidParameterValue {
		t.Fatalf("bad page token: %+v", e)
	}
}

func TestErrors(t *testing.T) {
	c, _ := newClient(t)
	ctx := context.Background()

	_, err := c.GetRun(ctx, "0123456789abcdef0123456789abcdef")
	e := apiError(t, err)
	if !client.IsNotFound(err) || e.StatusCode != http.StatusNotFound || e.Code != client.CodeResourceDoesNotExist || e.Message == "" {
		t.Fatalf("missing run: %+v", e)
	}
	if !strings.Contains(err.Error(), "RESOURCE_DOES_NOT_EXIST") || !strings.Contains(err.Error(), "404") {
		t.Fatalf("Error() = %q", err.Error())
	}
	if _, err := c.GetExperimentByName(ctx, "nope"); !client.IsNotFound(err) {
		t.Fatalf("missing experiment: %v", err)
	}

	run, err := c.CreateRun(ctx, client.CreateRunRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"bad filter": func() error {
			_, err := c.SearchRuns(ctx, client.SearchRunsRequest{ExperimentIDs: []string{"0"}, Filter: "metrics.auc >>> 1"})
			return err
		}(),
		"param changed": func() error {
			if err := c.LogParam(ctx, run.Info.RunID, "lr", "0.1"); err != nil {
				return err
			}
			return c.LogParam(ctx, run.Info.RunID, "lr", "0.2")
		}(),
		"bad view type": func() error {
			_, err := c.SearchExperiments(ctx, client.SearchExperimentsRequest{ViewType: "SOME"})
			return err
		}(),
		"bad status": func() error {
			_, err := c.UpdateRun(ctx, client.UpdateRunRequest{RunID: run.Info.RunID, Status: "DONE"})
			return err
		}(),
	} {
		e := apiError(t, err)
		if e.StatusCode != http.StatusBadRequest || e.Code != client.CodeInvalidParameterValue || client.IsNotFound(err) {
			t.Errorf("%s: %+v", name, e)
		}
	}
}

func TestNonAPIErrorsAndTransport(t *testing.T) {
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "<html>502 Bad Gateway</html>", http.StatusBadGateway)
	}))
	defer proxy.Close()
	c, err := client.New(proxy.URL)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.GetRun(context.Background(), "abc")
	e := apiError(t, err)
	if e.StatusCode != 502 || e.Code != "" || !strings.Contains(e.Message, "502 Bad Gateway") || client.IsNotFound(err) {
		t.Fatalf("proxy error: %+v", e)
	}

	// A server that hands back the token it was sent must not make the
	// iterator loop forever.
	stuck := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"experiments":[{"experiment_id":"1","name":"a"}],"next_page_token":"same"}`))
	}))
	defer stuck.Close()
	sc, _ := client.New(stuck.URL)
	got, err := sc.SearchAllExperiments(context.Background(), client.SearchExperimentsRequest{PageToken: "same"})
	if err == nil || got != nil {
		t.Fatalf("repeated page token: %v, %v", got, err)
	}

	proxy.Close()
	_, err = c.GetRun(context.Background(), "abc")
	var ae *client.APIError
	if err == nil || errors.As(err, &ae) {
		t.Fatalf("closed server: want a transport error, got %v", err)
	}
}

// chunkyReader hides its concrete type so the upload cannot learn the length
// in advance and has to stream.
type chunkyReader struct{ r io.Reader }

func (c chunkyReader) Read(p []byte) (int, error) { return c.r.Read(p[:min(len(p), 7919)]) }

func TestArtifacts(t *testing.T) {
	c, _ := newClient(t)
	ctx := context.Background()
	run, err := c.CreateRun(ctx, client.CreateRunRequest{})
	if err != nil {
		t.Fatal(err)
	}
	id := run.Info.RunID

	big := make([]byte, 5<<20+123)
	rng := rand.NewChaCha8([32]byte{1})
	rng.Read(big)
	want := sha256.Sum256(big)
	if err := c.UploadArtifact(ctx, id, "model/weights.bin", chunkyReader{bytes.NewReader(big)}); err != nil {
		t.Fatal(err)
	}
	if err := c.UploadArtifactTo(ctx, run.Info.ArtifactURI, "model/MLmodel", strings.NewReader("flavors: {}\n")); err != nil {
		t.Fatal(err)
	}
	if err := c.UploadArtifact(ctx, id, "notes 2026:01.txt", strings.NewReader("spaces and colons")); err != nil {
		t.Fatal(err)
	}

	root, err := c.ListRunArtifacts(ctx, id, "")
	if err != nil {
		t.Fatal(err)
	}
	if root.RootURI != run.Info.ArtifactURI || len(root.Files) != 2 {
		t.Fatalf("root listing = %+v", root)
	}
	byPath := map[string]client.FileInfo{}
	for _, f := range root.Files {
		byPath[f.Path] = f
	}
	if !byPath["model"].IsDir || byPath["notes 2026:01.txt"].FileSize != int64(len("spaces and colons")) {
		t.Fatalf("root listing = %+v", root.Files)
	}
	sub, err := c.ListRunArtifacts(ctx, id, "model")
	if err != nil {
		t.Fatal(err)
	}
	sizes := map[string]int64{}
	for _, f := range sub.Files {
		sizes[f.Path] = f.FileSize
	}
	if sizes["model/weights.bin"] != int64(len(big)) || sizes["model/MLmodel"] != 12 {
		t.Fatalf("model listing = %+v", sub.Files)
	}

	rc, err := c.DownloadArtifact(ctx, id, "model/weights.bin")
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n, err := io.Copy(h, rc)
	rc.Close()
	if err != nil || n != int64(len(big)) || !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatalf("downloaded %d bytes (err %v), digest match %v", n, err, bytes.Equal(h.Sum(nil), want[:]))
	}
	rc, err = c.DownloadArtifactFrom(ctx, run.Info.ArtifactURI, "notes 2026:01.txt")
	if err != nil {
		t.Fatal(err)
	}
	small, _ := io.ReadAll(rc)
	rc.Close()
	if string(small) != "spaces and colons" {
		t.Fatalf("downloaded %q", small)
	}

	if _, err := c.DownloadArtifact(ctx, id, "missing.txt"); !client.IsNotFound(err) {
		t.Fatalf("missing artifact: %v", err)
	}
	for _, bad := range []string{"../escape.txt", "a/../../b", "/etc/passwd", "a//b"} {
		if err := c.UploadArtifact(ctx, id, bad, strings.NewReader("x")); err == nil || !strings.Contains(err.Error(), "invalid artifact path") {
			t.Errorf("upload to %q: %v", bad, err)
		}
	}
	// What the client lets through, the server still judges.
	err = c.UploadArtifact(ctx, id, "a%2e%2e/b", strings.NewReader("x"))
	if e := apiError(t, err); e.Code != client.CodeInvalidParameterValue {
		t.Fatalf("encoded traversal upload: %+v", e)
	}
	listing, err := c.ListRunArtifacts(ctx, id, "")
	if err != nil || len(listing.Files) != 2 {
		t.Fatalf("refused uploads left files behind: %+v, %v", listing, err)
	}
	if err := c.UploadArtifactTo(ctx, "s3://bucket/x", "a.txt", strings.NewReader("x")); err == nil {
		t.Fatal("upload to a non-proxy URI should fail")
	}
}
