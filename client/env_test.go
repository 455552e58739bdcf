package client_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/slipwayml/slipway/client"
)

// clearEnv unsets every variable FromEnv reads, so the developer's own
// environment cannot leak into a test.
func clearEnv(t *testing.T) {
	for _, v := range []string{"SLIPWAY_URL", "MLFLOW_TRACKING_URI", "SLIPWAY_TOKEN", "MLFLOW_TRACKING_TOKEN",
		"MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"} {
		t.Setenv(v, "")
	}
}

// headerEcho records the request headers of the last call.
func headerEcho(t *testing.T) (*httptest.Server, func() http.Header) {
	var mu sync.Mutex
	var last http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		last = r.Header.Clone()
		mu.Unlock()
		w.Write([]byte(`{"experiment":{"experiment_id":"0","name":"Default"}}`))
	}))
	t.Cleanup(srv.Close)
	return srv, func() http.Header { mu.Lock(); defer mu.Unlock(); return last }
}

func TestFromEnv(t *testing.T) {
	srv, last := headerEcho(t)
	basic := func(u, p string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(u+":"+p)) }
	cases := []struct {
		name     string
		env      map[string]string
		wantURL  string
		wantAuth string
		wantErr  string
	}{
		{name: "default", wantURL: client.DefaultURL},
		{name: "mlflow uri", env: map[string]string{"MLFLOW_TRACKING_URI": srv.URL + "/"}, wantURL: srv.URL},
		{name: "slipway url wins", env: map[string]string{"SLIPWAY_URL": srv.URL + "/prefix", "MLFLOW_TRACKING_URI": "http://other:1"}, wantURL: srv.URL + "/prefix"},
		{name: "databricks", env: map[string]string{"MLFLOW_TRACKING_URI": "databricks"}, wantErr: `MLFLOW_TRACKING_URI "databricks" is a Databricks URI`},
		{name: "file path", env: map[string]string{"MLFLOW_TRACKING_URI": "./mlruns"}, wantErr: `MLFLOW_TRACKING_URI "./mlruns" is a local path`},
		{name: "file uri", env: map[string]string{"SLIPWAY_URL": "file:///tmp/mlruns"}, wantErr: `SLIPWAY_URL "file:///tmp/mlruns" is a local path`},
		{name: "sqlite", env: map[string]string{"MLFLOW_TRACKING_URI": "sqlite:///mlflow.db"}, wantErr: "MLFLOW_TRACKING_URI \"sqlite:///mlflow.db\" is not an http:// or https:// URL"},
		{name: "slipway token", env: map[string]string{"SLIPWAY_URL": srv.URL, "SLIPWAY_TOKEN": "swt_a", "MLFLOW_TRACKING_USERNAME": "u", "MLFLOW_TRACKING_PASSWORD": "p"},
			wantURL: srv.URL, wantAuth: "Bearer swt_a"},
		{name: "mlflow token", env: map[string]string{"SLIPWAY_URL": srv.URL, "MLFLOW_TRACKING_TOKEN": "swt_b"}, wantURL: srv.URL, wantAuth: "Bearer swt_b"},
		// As in MLflow's clients, basic credentials win over MLFLOW_TRACKING_TOKEN.
		{name: "mlflow basic", env: map[string]string{"SLIPWAY_URL": srv.URL, "MLFLOW_TRACKING_TOKEN": "swt_b", "MLFLOW_TRACKING_USERNAME": "ana", "MLFLOW_TRACKING_PASSWORD": "pw"},
			wantURL: srv.URL, wantAuth: basic("ana", "pw")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			c, err := client.FromEnv()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.URL() != tc.wantURL {
				t.Fatalf("URL = %q, want %q", c.URL(), tc.wantURL)
			}
			if !strings.HasPrefix(tc.wantURL, srv.URL) {
				return
			}
			if _, err := c.GetExperiment(context.Background(), "0"); err != nil {
				t.Fatal(err)
			}
			if got := last().Get("Authorization"); got != tc.wantAuth {
				t.Fatalf("Authorization = %q, want %q", got, tc.wantAuth)
			}
		})
	}
}

func TestOptions(t *testing.T) {
	srv, last := headerEcho(t)
	hc := &http.Client{}
	c, err := client.New(srv.URL, client.WithBasicAuth("u", "p"), client.WithToken("t"), client.WithUserAgent("trainer/1.0"), client.WithHTTPClient(hc))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetExperiment(context.Background(), "0"); err != nil {
		t.Fatal(err)
	}
	h := last()
	if h.Get("Authorization") != "Bearer t" || h.Get("User-Agent") != "trainer/1.0" {
		t.Fatalf("headers = %v", h)
	}
	for _, bad := range []string{"localhost:5000", "ftp://host", "http://", "http://u:p@host", "/var/mlruns"} {
		if _, err := client.New(bad); err == nil {
			t.Errorf("New(%q) should fail", bad)
		}
	}
}

func TestAuthAgainstServer(t *testing.T) {
	s := startServer(t, true)
	ctx := context.Background()
	_, secret, err := s.App.Auth.Create(ctx, "ci", "", "editor")
	if err != nil {
		t.Fatal(err)
	}
	anon, _ := client.New(s.URL)
	_, err = anon.GetExperiment(ctx, "0")
	if e := apiError(t, err); e.StatusCode != http.StatusUnauthorized || e.Code != client.CodeUnauthenticated {
		t.Fatalf("anonymous: %+v", e)
	}
	for name, opt := range map[string]client.Option{"bearer": client.WithToken(secret), "basic": client.WithBasicAuth("ci", secret)} {
		c, _ := client.New(s.URL, opt)
		if _, err := c.CreateExperiment(ctx, client.CreateExperimentRequest{Name: "auth-" + name}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	bad, _ := client.New(s.URL, client.WithToken("swt_wrong"))
	if _, err := bad.GetExperiment(ctx, "0"); apiError(t, err).Code != client.CodeUnauthenticated {
		t.Fatalf("wrong token: %v", err)
	}
}

// Other servers (and protobuf's JSON printer) write int64 fields as strings;
// the SDK reads both.
func TestLenientDecoding(t *testing.T) {
	var run client.Run
	err := json.Unmarshal([]byte(`{"info":{"run_uuid":"r1","start_time":"1700000000000","end_time":1.7000000001e12},
		"data":{"metrics":[{"key":"a","value":"NaN","timestamp":"5","step":"2"},{"key":"b","value":"Infinity","timestamp":1,"step":0},
		{"key":"c","value":"-Infinity","timestamp":1,"step":0},{"key":"d","value":"0.5","timestamp":1,"step":0}]}}`), &run)
	if err != nil {
		t.Fatal(err)
	}
	if run.Info.RunID != "r1" || run.Info.StartTime != 1_700_000_000_000 || run.Info.EndTime != 1_700_000_000_100 {
		t.Fatalf("info = %+v", run.Info)
	}
	m := run.Data.Metrics
	if !math.IsNaN(m[0].Value) || m[0].Timestamp != 5 || m[0].Step != 2 || !math.IsInf(m[1].Value, 1) || !math.IsInf(m[2].Value, -1) || m[3].Value != 0.5 {
		t.Fatalf("metrics = %+v", m)
	}
	var e client.Experiment
	if err := json.Unmarshal([]byte(`{"experiment_id":"3","creation_time":"12","last_update_time":13}`), &e); err != nil || e.CreationTime != 12 || e.LastUpdateTime != 13 || e.ID != "3" {
		t.Fatalf("experiment = %+v, %v", e, err)
	}
	var f client.FileInfo
	if err := json.Unmarshal([]byte(`{"path":"a","file_size":"42"}`), &f); err != nil || f.FileSize != 42 {
		t.Fatalf("file = %+v, %v", f, err)
	}
	if err := json.Unmarshal([]byte(`{"key":"a","value":"abc","timestamp":1}`), new(client.Metric)); err == nil {
		t.Fatal("a non-numeric value should not decode")
	}
}
