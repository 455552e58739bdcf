package e2e

// Ports of MLflow 2.x tests/tracking/test_rest_tracking.py: every test that
// exercises the tracking REST surface, driven over HTTP with the requests
// MLflow's Python client sends (mlflow/store/tracking/rest_store.py,
// mlflow/utils/rest_utils.py). Each subtest of TestRest is named after the
// Python test it ports, without the "test_" prefix; docs/mlflow-compatibility.md
// lists them with their status.
//
// The Python suite starts a fresh server per test; here one server serves
// the group and experiment names are made unique where the Python tests
// reuse one. The two tests that assert the exact set of experiments on a
// server start their own.
//
// Not ported (out of scope or not observable over REST): GraphQL, traces,
// logged models, prompt lab, gateway proxy, model registry, and
// test_get_metric_history_bulk_calls_optimized_impl_when_expected (it mocks
// the store inside the Flask process).

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/http"
	"net/url"
	"path"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

type restCase struct {
	name string
	fn   func(t *testing.T, c *mlflowClient)
}

func TestRest(t *testing.T) {
	s := Start(t)
	for _, tc := range restCases {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, mlflowOn(s, t)) })
	}
}

var restCases = []restCase{
	{"create_get_search_experiment", func(t *testing.T, _ *mlflowClient) {
		// Asserts the exact experiments on the server: needs its own.
		c := mlflowOn(Start(t), t)
		id := c.createExperiment("My Experiment", "artifact_location", "my_location",
			"tags", []map[string]string{{"key": "key1", "value": "val1"}, {"key": "key2", "value": "val2"}})
		exp := c.getExperiment(id)
		if mfStr(exp["name"]) != "My Experiment" {
			t.Errorf("name = %v", exp["name"])
		}
		// MLflow's file and SQL stores resolve a relative location against
		// the server's working directory. Slipway never hands out server
		// paths: a relative location is a path inside its artifact store.
		if loc := mfStr(exp["artifact_location"]); !strings.HasSuffix(loc, "my_location") {
			t.Errorf("artifact_location = %q, want it to name my_location", loc)
		}
		if tags := mfKV(exp["tags"]); len(tags) != 2 || tags["key1"] != "val1" || tags["key2"] != "val2" {
			t.Errorf("tags = %v", tags)
		}
		set := func(names []string) []string { slices.Sort(names); return names }
		if got, _ := c.searchExperiments("ACTIVE_ONLY", 0, "", nil, ""); !reflect.DeepEqual(set(got), []string{"Default", "My Experiment"}) {
			t.Errorf("search_experiments() = %v", got)
		}
		c.ok("experiments/delete", map[string]any{"experiment_id": id})
		for view, want := range map[string][]string{
			"ACTIVE_ONLY":  {"Default"},
			"DELETED_ONLY": {"My Experiment"},
			"ALL":          {"Default", "My Experiment"},
		} {
			if got, _ := c.searchExperiments(view, 0, "", nil, ""); !reflect.DeepEqual(set(got), want) {
				t.Errorf("search_experiments(view_type=%s) = %v, want %v", view, got, want)
			}
		}
		page, token := c.searchExperiments("ACTIVE_ONLY", 1, "", nil, "")
		if !reflect.DeepEqual(page, []string{"Default"}) || token != "" {
			t.Errorf("search_experiments(max_results=1) = %v token %q, want [Default] and no token", page, token)
		}
		first, token := c.searchExperiments("ALL", 1, "", nil, "")
		second, _ := c.searchExperiments("ALL", 1, "", nil, token)
		if len(first) != 1 || len(second) != 1 || !reflect.DeepEqual(set(append(first, second...)), []string{"Default", "My Experiment"}) {
			t.Errorf("paged ALL = %v then %v", first, second)
		}
	}},

	{"create_experiment_validation", func(t *testing.T, c *mlflowClient) {
		c.badRequestText("experiments/create", map[string]any{"name": 123}, "Invalid value 123 for parameter 'name'")
		c.badRequestText("experiments/create", map[string]any{}, "Missing value for required parameter 'name'")
		// Sent as text: Python's json.dumps writes 9.0 where Go would write 9.
		c.badRequestText("experiments/create", `{"name": "experiment name", "artifact_location": 9.0, "tags": [{"key": "key", "value": "value"}]}`,
			"Invalid value 9.0 for parameter 'artifact_location'")
		c.badRequestText("experiments/create", map[string]any{"name": "experiment name", "artifact_location": "my_location", "tags": "5"},
			`Invalid value \"5\" for parameter 'tags'`)
	}},

	{"delete_restore_experiment", func(t *testing.T, c *mlflowClient) {
		id := c.createExperiment(uniqueName("Deleterious"))
		stage := func() string { return mfStr(c.getExperiment(id)["lifecycle_stage"]) }
		if s := stage(); s != "active" {
			t.Fatalf("new experiment is %q", s)
		}
		c.ok("experiments/delete", map[string]any{"experiment_id": id})
		if s := stage(); s != "deleted" {
			t.Fatalf("deleted experiment is %q", s)
		}
		c.ok("experiments/restore", map[string]any{"experiment_id": id})
		if s := stage(); s != "active" {
			t.Fatalf("restored experiment is %q", s)
		}
	}},

	// The CLI test drives `mlflow experiments create/delete/restore`, which
	// call MlflowClient.create_experiment, get_experiment_by_name,
	// delete_experiment and restore_experiment: the same requests.
	{"delete_restore_experiment_cli", func(t *testing.T, c *mlflowClient) {
		name := uniqueName("DeleteriousCLI")
		c.createExperiment(name)
		id := mfStr(mfDig(c.ok("experiments/get-by-name", map[string]any{"experiment_name": name}), "experiment.experiment_id"))
		for _, step := range []struct{ endpoint, want string }{{"", "active"}, {"experiments/delete", "deleted"}, {"experiments/restore", "active"}} {
			if step.endpoint != "" {
				c.ok(step.endpoint, map[string]any{"experiment_id": id})
			}
			if got := mfStr(c.getExperiment(id)["lifecycle_stage"]); got != step.want {
				t.Fatalf("after %q: lifecycle_stage %q, want %q", step.endpoint, got, step.want)
			}
		}
	}},

	{"rename_experiment", func(t *testing.T, c *mlflowClient) {
		bad, good := uniqueName("BadName"), uniqueName("GoodName")
		id := c.createExperiment(bad)
		if n := mfStr(c.getExperiment(id)["name"]); n != bad {
			t.Fatalf("name %q", n)
		}
		c.ok("experiments/update", map[string]any{"experiment_id": id, "new_name": good})
		if n := mfStr(c.getExperiment(id)["name"]); n != good {
			t.Fatalf("renamed to %q, want %q", n, good)
		}
	}},

	{"rename_experiment_cli", func(t *testing.T, c *mlflowClient) {
		bad, good := uniqueName("CLIBadName"), uniqueName("CLIGoodName")
		c.createExperiment(bad)
		id := mfStr(mfDig(c.ok("experiments/get-by-name", map[string]any{"experiment_name": bad}), "experiment.experiment_id"))
		c.ok("experiments/update", map[string]any{"experiment_id": id, "new_name": good})
		if n := mfStr(c.getExperiment(id)["name"]); n != good {
			t.Fatalf("renamed to %q, want %q", n, good)
		}
	}},

	{"create_run_all_args/parent_run_id_kwarg=None", func(t *testing.T, c *mlflowClient) { restCreateRunAllArgs(t, c, "None") }},
	{"create_run_all_args/parent_run_id_kwarg=my-parent-id", func(t *testing.T, c *mlflowClient) { restCreateRunAllArgs(t, c, "my-parent-id") }},

	{"create_run_defaults", func(t *testing.T, c *mlflowClient) {
		exp := c.createExperiment(uniqueName("Run A Little"))
		id := c.newRunID(exp)
		run := c.getRun(id)
		if mfRunID(run) != id || mfStr(mfDig(run, "info.experiment_id")) != exp || mfStr(mfDig(run, "info.user_id")) != "unknown" {
			t.Errorf("run info = %v", run["info"])
		}
	}},

	{"log_metrics_params_tags", func(t *testing.T, c *mlflowClient) {
		exp := c.createExperiment(uniqueName("Oh My"))
		id := c.newRunID(exp)
		now := time.Now().UnixMilli()
		c.logMetric(id, "metric", 123.456, 789, 2)
		// MlflowClient.log_metric defaults timestamp to now and step to 0;
		// protobuf's JSON printer sends non-finite doubles as strings.
		c.logMetric(id, "nan_metric", "NaN", now, 0)
		c.logMetric(id, "inf_metric", "Infinity", now, 0)
		c.logMetric(id, "-inf_metric", "-Infinity", now, 0)
		c.logMetric(id, "stepless-metric", 987.654, 321, 0)
		c.logParam(id, "param", "value")
		c.setTag(id, "taggity", "do-dah")
		run := c.getRun(id)
		m := mfMetrics(run)
		if m["metric"] != 123.456 || !math.IsNaN(m["nan_metric"]) || m["inf_metric"] < math.MaxFloat64 ||
			m["-inf_metric"] > -math.MaxFloat64 || m["stepless-metric"] != 987.654 {
			t.Errorf("metrics = %v", m)
		}
		if mfParams(run)["param"] != "value" || mfTags(run)["taggity"] != "do-dah" {
			t.Errorf("params %v tags %v", mfParams(run), mfTags(run))
		}
		if h := mfTuples(c.metricHistory(id, "metric")); len(h) != 1 || h[0] != (mfMetric{Key: "metric", Value: 123.456, Timestamp: 789, Step: 2}) {
			t.Errorf("history of metric = %+v", h)
		}
		if h := mfTuples(c.metricHistory(id, "stepless-metric")); len(h) != 1 || h[0] != (mfMetric{Key: "stepless-metric", Value: 987.654, Timestamp: 321, Step: 0}) {
			t.Errorf("history of stepless-metric = %+v", h)
		}
		if h := c.metricHistory(id, "a_test_accuracy"); len(h) != 0 {
			t.Errorf("history of a metric never logged = %v, want []", h)
		}
	}},

	{"log_metric_validation", func(t *testing.T, c *mlflowClient) {
		id := c.newRunID(c.createExperiment(uniqueName("metrics validation")))
		ep := "runs/log-metric"
		c.badRequestText(ep, map[string]any{"run_id": 31, "key": "metric", "value": 41, "timestamp": 59, "step": 26}, "Invalid value 31 for parameter 'run_id' supplied")
		c.badRequestText(ep, map[string]any{"run_id": id, "key": 31, "value": 41, "timestamp": 59, "step": 26}, "Invalid value 31 for parameter 'key' supplied")
		c.badRequestText(ep, map[string]any{"run_id": id, "key": "foo", "value": 31, "timestamp": 59, "step": "foo"}, `Invalid value \"foo\" for parameter 'step' supplied`)
		c.badRequestText(ep, map[string]any{"run_id": id, "key": "foo", "value": 31, "timestamp": "foo", "step": 41}, `Invalid value \"foo\" for parameter 'timestamp' supplied`)
		c.badRequestText(ep, map[string]any{"run_id": nil, "key": "foo", "value": 31, "timestamp": 59, "step": 41}, "Missing value for required parameter 'run_id'")
		c.badRequestText(ep, map[string]any{"run_id": id, "value": 31, "timestamp": 59, "step": 41}, "Missing value for required parameter 'key'")
		c.badRequestText(ep, map[string]any{"run_id": id, "key": nil, "value": 31, "timestamp": 59, "step": 41}, "Missing value for required parameter 'key'")
	}},

	{"log_param_validation", func(t *testing.T, c *mlflowClient) {
		id := c.newRunID(c.createExperiment(uniqueName("params validation")))
		c.badRequestText("runs/log-parameter", map[string]any{"run_id": 31, "key": "param", "value": 41}, "Invalid value 31 for parameter 'run_id' supplied")
		c.badRequestText("runs/log-parameter", map[string]any{"run_id": id, "key": 31, "value": 41}, "Invalid value 31 for parameter 'key' supplied")
	}},

	{"log_param_with_empty_string_as_value", func(t *testing.T, c *mlflowClient) {
		id := c.newRunID(c.createExperiment(uniqueName("test_log_param_with_empty_string_as_value")))
		c.logParam(id, "param_key", "")
		if p, ok := mfParams(c.getRun(id))["param_key"]; !ok || p != "" {
			t.Errorf("params = %v, want param_key=\"\"", mfParams(c.getRun(id)))
		}
	}},

	{"set_tag_with_empty_string_as_value", func(t *testing.T, c *mlflowClient) {
		id := c.newRunID(c.createExperiment(uniqueName("test_set_tag_with_empty_string_as_value")))
		c.setTag(id, "tag_key", "")
		if v, ok := mfTags(c.getRun(id))["tag_key"]; !ok || v != "" {
			t.Errorf("tags = %v, want tag_key=\"\"", mfTags(c.getRun(id)))
		}
	}},

	{"log_batch_containing_params_and_tags_with_empty_string_values", func(t *testing.T, c *mlflowClient) {
		id := c.newRunID(c.createExperiment(uniqueName("test_log_batch_containing_params_and_tags_with_empty_string_values")))
		c.ok("runs/log-batch", map[string]any{"run_id": id,
			"params": []map[string]string{{"key": "param_key", "value": ""}},
			"tags":   []map[string]string{{"key": "tag_key", "value": ""}}})
		run := c.getRun(id)
		if v, ok := mfParams(run)["param_key"]; !ok || v != "" {
			t.Errorf("params = %v", mfParams(run))
		}
		if v, ok := mfTags(run)["tag_key"]; !ok || v != "" {
			t.Errorf("tags = %v", mfTags(run))
		}
	}},

	{"set_tag_validation", func(t *testing.T, c *mlflowClient) {
		id := c.newRunID(c.createExperiment(uniqueName("tags validation")))
		c.badRequestText("runs/set-tag", map[string]any{"run_id": 31, "key": "tag", "value": 41}, "Invalid value 31 for parameter 'run_id' supplied")
		c.badRequestText("runs/set-tag", map[string]any{"run_id": id, "key": "param", "value": 41}, "Invalid value 41 for parameter 'value' supplied")
		c.badRequestText("runs/set-tag", map[string]any{"run_id": id, "value": "value"}, "Missing value for required parameter 'key'")
		if status, text := c.postRaw("runs/set-tag", map[string]any{"run_uuid": id, "key": "key", "value": "value"}); status != http.StatusOK {
			t.Errorf("set-tag with run_uuid only: %d %s", status, text)
		}
	}},

	// The Python test asserts the whole answer equals {"error_code":
	// "INVALID_PARAMETER_VALUE", "message": "Invalid path"}; Slipway may say
	// which rule the path breaks after that. Its third request
	// (model-versions/get-artifact) belongs to the registry, not ported yet.
	{"path_validation", func(t *testing.T, c *mlflowClient) {
		id := c.newRunID(c.createExperiment(uniqueName("tags validation")))
		q := url.Values{"run_id": {id}, "path": {"../path"}}.Encode()
		for _, p := range []string{"/api/2.0/mlflow/artifacts/list?" + q, "/get-artifact?" + q} {
			status, out := c.s.JSON("GET", p, nil)
			msg := mlflowError(t, "GET "+p, status, out, http.StatusBadRequest, "INVALID_PARAMETER_VALUE")
			if !strings.HasPrefix(msg, "Invalid path") {
				t.Errorf("GET %s: message %q, want MLflow's \"Invalid path\"", p, msg)
			}
		}
	}},

	{"set_experiment_tag", func(t *testing.T, c *mlflowClient) {
		id := c.createExperiment(uniqueName("SetExperimentTagTest"))
		set := func(exp, k, v string) {
			c.ok("experiments/set-experiment-tag", map[string]any{"experiment_id": exp, "key": k, "value": v})
		}
		tags := func(exp string) map[string]string { return mfKV(c.getExperiment(exp)["tags"]) }
		set(id, "dataset", "imagenet1K")
		if tags(id)["dataset"] != "imagenet1K" {
			t.Errorf("tags = %v", tags(id))
		}
		set(id, "dataset", "birdbike")
		if tags(id)["dataset"] != "birdbike" {
			t.Errorf("updated tags = %v", tags(id))
		}
		id2 := c.createExperiment(uniqueName("SetExperimentTagTest2"))
		if len(tags(id2)) != 0 {
			t.Errorf("new experiment has tags %v", tags(id2))
		}
		set(id2, "dataset", "birds200")
		if tags(id)["dataset"] != "birdbike" || tags(id2)["dataset"] != "birds200" {
			t.Errorf("tags leak between experiments: %v / %v", tags(id), tags(id2))
		}
		set(id, "multiline tag", "value2\nvalue2\nvalue2")
		if tags(id)["multiline tag"] != "value2\nvalue2\nvalue2" {
			t.Errorf("multiline tag = %q", tags(id)["multiline tag"])
		}
	}},

	{"set_experiment_tag_with_empty_string_as_value", func(t *testing.T, c *mlflowClient) {
		id := c.createExperiment(uniqueName("test_set_experiment_tag_with_empty_string_as_value"))
		c.ok("experiments/set-experiment-tag", map[string]any{"experiment_id": id, "key": "tag_key", "value": ""})
		if v, ok := mfKV(c.getExperiment(id)["tags"])["tag_key"]; !ok || v != "" {
			t.Errorf("tags = %v", c.getExperiment(id)["tags"])
		}
	}},

	{"delete_tag", func(t *testing.T, c *mlflowClient) {
		id := c.newRunID(c.createExperiment(uniqueName("DeleteTagExperiment")))
		c.logMetric(id, "metric", 123.456, 789, 2)
		c.logMetric(id, "stepless-metric", 987.654, 321, 0)
		c.logParam(id, "param", "value")
		c.setTag(id, "taggity", "do-dah")
		if mfTags(c.getRun(id))["taggity"] != "do-dah" {
			t.Fatalf("tag not set")
		}
		c.ok("runs/delete-tag", map[string]any{"run_id": id, "key": "taggity"})
		if _, ok := mfTags(c.getRun(id))["taggity"]; ok {
			t.Errorf("tag still there after delete-tag")
		}
		deleteTag := func(run, key string) string {
			status, out := c.call("runs/delete-tag", map[string]any{"run_id": run, "key": key})
			if status == http.StatusOK {
				t.Errorf("delete-tag %s %s succeeded, want an MlflowException", run, key)
			}
			return mfStr(out["message"])
		}
		if msg := deleteTag("fake_run_id", "taggity"); !mfMatches(`Run .+ not found`, msg) {
			t.Errorf("delete-tag on a missing run: %q", msg)
		}
		if msg := deleteTag(id, "fakeTag"); !strings.Contains(msg, "No tag with name: fakeTag") {
			t.Errorf("delete-tag of a missing tag: %q", msg)
		}
		c.ok("runs/delete", map[string]any{"run_id": id})
		if msg := deleteTag(id, "taggity"); !strings.Contains(msg, "The run "+id+" must be in") {
			t.Errorf("delete-tag on a deleted run: %q", msg)
		}
	}},

	{"log_batch", func(t *testing.T, c *mlflowClient) {
		id := c.newRunID(c.createExperiment(uniqueName("Batch em up")))
		c.ok("runs/log-batch", map[string]any{"run_id": id,
			"metrics": []map[string]any{{"key": "metric", "value": 123.456, "timestamp": 789, "step": 3}},
			"params":  []map[string]string{{"key": "param", "value": "value"}},
			"tags":    []map[string]string{{"key": "taggity", "value": "do-dah"}}})
		run := c.getRun(id)
		if mfMetrics(run)["metric"] != 123.456 || mfParams(run)["param"] != "value" || mfTags(run)["taggity"] != "do-dah" {
			t.Errorf("run data = %v", run["data"])
		}
		if h := mfTuples(c.metricHistory(id, "metric")); len(h) != 1 || h[0] != (mfMetric{Key: "metric", Value: 123.456, Timestamp: 789, Step: 3}) {
			t.Errorf("history = %+v", h)
		}
	}},

	{"log_batch_validation", func(t *testing.T, c *mlflowClient) {
		id := c.newRunID(c.createExperiment(uniqueName("log_batch validation")))
		for _, field := range []string{"metrics", "params", "tags"} {
			c.badRequestText("runs/log-batch", map[string]any{"run_id": id, field: "foo"},
				fmt.Sprintf(`Invalid value \"foo\" for parameter '%s' supplied`, field))
		}
		// Should 400 if missing timestamp. MLflow 2.x has said this two ways:
		// 'Invalid value [{"key":"mae","value":2.5}] for parameter 'metrics''
		// and, later, "Missing value for required parameter 'metrics[0].timestamp'".
		status, text := c.postRaw("runs/log-batch", map[string]any{"run_id": id, "metrics": []map[string]any{{"key": "mae", "value": 2.5}}})
		if status != http.StatusBadRequest || !(strings.Contains(text, "metrics[0].timestamp") ||
			strings.Contains(text, `for parameter 'metrics' supplied`)) {
			t.Errorf("log-batch metric without timestamp: got %d %s, want 400 naming metrics[0].timestamp", status, strings.TrimSpace(text))
		}
		// Should 200 if timestamp provided but step is not.
		if status, text := c.postRaw("runs/log-batch", map[string]any{"run_id": id,
			"metrics": []map[string]any{{"key": "mae", "value": 2.5, "timestamp": 123456789}}}); status != http.StatusOK {
			t.Errorf("log-batch without step: %d %s", status, text)
		}
	}},

	// test_log_model logs three pyfunc models with mlflow.pyfunc.log_model,
	// which ends in RestStore.record_logged_model: runs/log-model with the
	// MLmodel as model_json. The server keeps every model, in order, in the
	// mlflow.log-model.history tag.
	{"log_model", func(t *testing.T, c *mlflowClient) {
		id := c.newRunID(c.createExperiment(uniqueName("Log models")))
		var sent []map[string]any
		for i := range 3 {
			m := map[string]any{
				"artifact_path":    fmt.Sprintf("model/path/%d", i),
				"run_id":           id,
				"utc_time_created": fmt.Sprintf("2024-01-0%d 10:00:00.000000", i+1),
				"model_uuid":       fmt.Sprintf("%032x", i+1),
				"mlflow_version":   "2.14.1",
				"flavors": map[string]any{"python_function": map[string]any{
					"loader_module": "mlflow.pyfunc", "env": map[string]any{"conda": "conda.yaml", "virtualenv": "python_env.yaml"}, "python_version": "3.10.12"}},
			}
			sent = append(sent, m)
			c.ok("runs/log-model", map[string]any{"run_id": id, "model_json": string(mfJSON(t, m))})
			var history []map[string]any
			tag := mfTags(c.getRun(id))["mlflow.log-model.history"]
			if err := json.Unmarshal([]byte(tag), &history); err != nil {
				t.Fatalf("mlflow.log-model.history is not a JSON list: %v: %q", err, tag)
			}
			if len(history) != i+1 {
				t.Fatalf("after %d models the history holds %d", i+1, len(history))
			}
			for j := range history {
				if history[j]["artifact_path"] != sent[j]["artifact_path"] || !mfEqualJSON(history[j], sent[j]) {
					t.Errorf("history[%d] = %v, want %v", j, history[j], sent[j])
				}
			}
		}
	}},

	{"set_terminated_defaults", func(t *testing.T, c *mlflowClient) { restSetTerminated(t, c, "", "FINISHED") }},
	{"set_terminated_status", func(t *testing.T, c *mlflowClient) { restSetTerminated(t, c, "FAILED", "FAILED") }},

	// The Python test's server stores artifacts under a local root the
	// client writes directly; against Slipway every MLflow client goes
	// through the artifact proxy (mlflow-artifacts:/ URIs), so this port
	// sends what HttpArtifactRepository sends.
	{"artifacts", func(t *testing.T, c *mlflowClient) {
		exp := c.createExperiment(uniqueName("Art In Fact"))
		loc := mfStr(c.getExperiment(exp)["artifact_location"])
		u, err := url.Parse(loc)
		if err != nil || path.Base(u.Path) != exp {
			t.Errorf("artifact_location %q: its last path segment should be the experiment id %s", loc, exp)
		}
		run := c.createRun(exp)
		id, uri := mfRunID(run), mfStr(mfDig(run, "info.artifact_uri"))
		if !strings.HasPrefix(uri, loc) {
			t.Errorf("run artifact_uri %q does not start with the experiment's %q", uri, loc)
		}
		root := mfArtifactPath(t, uri)
		c.putArtifact(root+"/my.file", "Hello, World!", "")     // log_artifact(run_id, src_file, None)
		c.putArtifact(root+"/dir/my.file", "Hello, World!", "") // log_artifacts(run_id, src_dir, "dir")
		if got := c.clientListArtifacts(id, ""); !reflect.DeepEqual(got, []string{"dir", "my.file"}) {
			t.Errorf("list_artifacts(run_id) = %v", got)
		}
		if got := c.clientListArtifacts(id, "dir"); !reflect.DeepEqual(got, []string{"dir/my.file"}) {
			t.Errorf("list_artifacts(run_id, \"dir\") = %v", got)
		}
		// download_artifacts(run_id=..., artifact_path=".") lists <root>/.
		// through the proxy (HttpArtifactRepository.list_artifacts joins the
		// path onto the root), then fetches each file.
		status, out := c.listProxy(root + "/.")
		if status != http.StatusOK {
			t.Errorf("download_artifacts(artifact_path=\".\") lists %q: %d %v", root+"/.", status, out)
		}
		for _, p := range []string{"my.file", "dir/my.file"} {
			if status, _, body := c.download(root + "/" + p); status != http.StatusOK || body != "Hello, World!" {
				t.Errorf("download %s: %d %q", p, status, body)
			}
		}
	}},

	{"search_pagination", func(t *testing.T, c *mlflowClient) {
		exp := c.createExperiment(uniqueName("search_pagination"))
		var ids []string
		for range 10 {
			ids = append(ids, mfRunID(c.createRun(exp, "start_time", 1)))
		}
		sort.Strings(ids)
		token := ""
		for i, want := range [][]string{ids[0:4], ids[4:8], ids[8:]} {
			runs, next := c.searchRuns([]string{exp}, "", "ACTIVE_ONLY", 4, nil, token)
			var got []string
			for _, r := range runs {
				got = append(got, mfRunID(r))
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("page %d = %v, want %v", i, got, want)
			}
			if (next == "") != (i == 2) {
				t.Errorf("page %d: next token %q", i, next)
			}
			token = next
		}
	}},

	{"search_validation", func(t *testing.T, c *mlflowClient) {
		exp := c.createExperiment(uniqueName("search_validation"))
		msg := c.fails("runs/search", map[string]any{"experiment_ids": []string{exp}, "max_results": 123456789, "run_view_type": "ACTIVE_ONLY"},
			http.StatusBadRequest, "INVALID_PARAMETER_VALUE")
		if !mfMatches(`Invalid value 123456789 for parameter 'max_results' supplied`, msg) {
			t.Errorf("message %q", msg)
		}
	}},

	{"get_experiment_by_name", func(t *testing.T, c *mlflowClient) {
		name := uniqueName("test_get_experiment_by_name")
		id := c.createExperiment(name)
		exp := mfObj(c.ok("experiments/get-by-name", map[string]any{"experiment_name": name})["experiment"])
		if mfStr(exp["experiment_id"]) != id || mfStr(exp["name"]) != name {
			t.Errorf("get-by-name = %v", exp)
		}
		// RestStore.get_experiment_by_name turns RESOURCE_DOES_NOT_EXIST into None.
		c.fails("experiments/get-by-name", map[string]any{"experiment_name": "idontexist"}, http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST")
	}},

	{"get_experiment", func(t *testing.T, c *mlflowClient) {
		name := uniqueName("test_get_experiment")
		id := c.createExperiment(name)
		exp := c.getExperiment(id)
		if mfStr(exp["experiment_id"]) != id || mfStr(exp["name"]) != name {
			t.Errorf("get = %v", exp)
		}
	}},

	{"search_experiments", func(t *testing.T, _ *mlflowClient) {
		// Asserts the exact experiments on the server: needs its own.
		c := mlflowOn(Start(t), t)
		search := func(view string, max int, filter string, orderBy []string, token string) ([]string, string) {
			return c.searchExperiments(view, max, filter, orderBy, token)
		}
		if got, _ := search("ACTIVE_ONLY", 0, "", nil, ""); len(got) == 0 || got[0] != "Default" {
			t.Fatalf("first experiment = %v", got)
		}
		var ids []string
		for _, e := range []struct {
			name string
			tags []map[string]string
		}{{"a", []map[string]string{{"key": "key", "value": "value"}}}, {"ab", []map[string]string{{"key": "key", "value": "vaLue"}}}, {"Abc", nil}} {
			time.Sleep(5 * time.Millisecond) // distinct creation_time, as the Python test sleeps
			ids = append(ids, c.createExperiment(e.name, "tags", e.tags))
		}
		check := func(what string, got, want []string) {
			t.Helper()
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s = %v, want %v", what, got, want)
			}
		}
		for filter, want := range map[string][]string{
			"attribute.name = 'a'":  {"a"},
			"attribute.name != 'a'": {"Abc", "ab", "Default"},
			"name LIKE 'a%'":        {"ab", "a"},
			"tag.key = 'value'":     {"a"},
			"tag.key != 'value'":    {"ab"},
			"tag.key ILIKE '%alu%'": {"ab", "a"},
		} {
			got, _ := search("ACTIVE_ONLY", 0, filter, nil, "")
			check("filter "+filter, got, want)
		}
		got, _ := search("ACTIVE_ONLY", 0, "", []string{"name DESC"}, "")
		check("order_by name DESC", got, []string{"ab", "a", "Default", "Abc"})
		got, token := search("ACTIVE_ONLY", 2, "", nil, "")
		check("max_results=2", got, []string{"Abc", "ab"})
		got, _ = search("ACTIVE_ONLY", 0, "", nil, token)
		check("page_token", got, []string{"a", "Default"})
		time.Sleep(5 * time.Millisecond)
		c.ok("experiments/delete", map[string]any{"experiment_id": ids[1]})
		got, _ = search("ACTIVE_ONLY", 0, "", nil, "")
		check("ACTIVE_ONLY", got, []string{"Abc", "a", "Default"})
		got, _ = search("DELETED_ONLY", 0, "", nil, "")
		check("DELETED_ONLY", got, []string{"ab"})
		got, _ = search("ALL", 0, "", nil, "")
		check("ALL", got, []string{"Abc", "ab", "a", "Default"})
	}},

	// get-history-bulk is served under /ajax-api only (handlers.py
	// get_metric_history_bulk_handler); MLflow's UI calls it.
	{"get_metric_history_bulk_rejects_invalid_requests", func(t *testing.T, c *mlflowClient) {
		bulk := "/ajax-api/2.0/mlflow/metrics/get-history-bulk?"
		for _, tc := range []struct {
			q    url.Values
			want string
		}{
			{url.Values{"metric_key": {"key"}}, "GetMetricHistoryBulk request must specify at least one run_id"},
			{url.Values{"run_id": mfIDs("id_", 1000), "metric_key": {"key"}}, "GetMetricHistoryBulk request cannot specify more than"},
			{url.Values{"run_id": {"123"}}, "GetMetricHistoryBulk request must specify a metric_key"},
		} {
			status, out := c.s.JSON("GET", bulk+tc.q.Encode(), nil)
			mlflowError(t, "get-history-bulk "+tc.q.Encode()[:min(60, len(tc.q.Encode()))], status, out, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", tc.want)
		}
	}},

	{"get_metric_history_bulk_returns_expected_metrics_in_expected_order", func(t *testing.T, c *mlflowClient) {
		exp := c.createExperiment(uniqueName("get metric history bulk"))
		r1, r2, r3 := c.newRunID(exp), c.newRunID(exp), c.newRunID(exp)
		a := []mfMetric{{"metricA", 10, 1, 2, ""}, {"metricA", 11, 1, 3, ""}, {"metricA", 12, 1, 3, ""}, {"metricA", 12, 2, 3, ""}}
		b := []mfMetric{{"metricB", -100, 7, -2, ""}, {"metricB", 0, 8, 0, ""}, {"metricB", 1, 8, 0, ""}, {"metricB", 12, 9, 1, ""}}
		for _, m := range append(slices.Clone(a), b...) {
			c.logMetric(r1, m.Key, m.Value, m.Timestamp, m.Step)
			c.logMetric(r2, m.Key, m.Value+1, m.Timestamp, m.Step)
		}
		with := func(ms []mfMetric, run string, add float64) []mfMetric {
			out := slices.Clone(ms)
			for i := range out {
				out[i].RunID, out[i].Value = run, out[i].Value+add
			}
			return out
		}
		byRun := func(ms ...[]mfMetric) []mfMetric {
			out := slices.Concat(ms...)
			sort.SliceStable(out, func(i, j int) bool { return out[i].RunID < out[j].RunID })
			return out
		}
		bulk := func(key string, runs ...string) []mfMetric {
			status, out := c.s.JSON("GET", "/ajax-api/2.0/mlflow/metrics/get-history-bulk?"+url.Values{"run_id": runs, "metric_key": {key}}.Encode(), nil)
			if status != http.StatusOK {
				t.Errorf("get-history-bulk %s %v: %d %v", key, runs, status, out)
			}
			return mfTuples(mfList(out["metrics"]))
		}
		mfCheckMetrics(t, "run1 metricA", bulk("metricA", r1), with(a, r1, 0))
		mfCheckMetrics(t, "run2 metricB", bulk("metricB", r2), with(b, r2, 1))
		mfCheckMetrics(t, "run1+run2 metricA", bulk("metricA", r1, r2), byRun(with(a, r1, 0), with(a, r2, 1)))
		mfCheckMetrics(t, "run1+run2+run3 metricB", bulk("metricB", r1, r2, r3), byRun(with(b, r1, 0), with(b, r2, 1)))
	}},

	{"get_metric_history_bulk_respects_max_results", func(t *testing.T, c *mlflowClient) {
		id := c.newRunID(c.createExperiment(uniqueName("get metric history bulk")))
		a := []mfMetric{{"metricA", 10, 1, 2, id}, {"metricA", 11, 1, 3, id}, {"metricA", 12, 1, 3, id}, {"metricA", 12, 2, 3, id}}
		for _, m := range a {
			c.logMetric(id, m.Key, m.Value, m.Timestamp, m.Step)
		}
		status, out := c.s.JSON("GET", "/ajax-api/2.0/mlflow/metrics/get-history-bulk?"+url.Values{"run_id": {id}, "metric_key": {"metricA"}, "max_results": {"2"}}.Encode(), nil)
		if status != http.StatusOK {
			t.Fatalf("get-history-bulk: %d %v", status, out)
		}
		mfCheckMetrics(t, "max_results=2", mfTuples(mfList(out["metrics"])), a[:2])
	}},

	{"get_metric_history_respects_max_results", func(t *testing.T, c *mlflowClient) {
		id := c.newRunID(c.createExperiment(uniqueName("test max_results")))
		for i := range 5 {
			c.logMetric(id, "test_metric", float64(i), int64(1000+i), int64(i))
		}
		if h := c.metricHistory(id, "test_metric"); len(h) != 5 {
			t.Errorf("full history has %d points", len(h))
		}
		status, out := c.s.JSON("GET", "/ajax-api/2.0/mlflow/metrics/get-history?"+url.Values{"run_id": {id}, "metric_key": {"test_metric"}, "max_results": {"3"}}.Encode(), nil)
		if status != http.StatusOK {
			t.Fatalf("get-history max_results=3: %d %v", status, out)
		}
		got := mfTuples(mfList(out["metrics"]))
		if len(got) != 3 {
			t.Fatalf("max_results=3 returned %d points", len(got))
		}
		for i, m := range got {
			if m.Key != "test_metric" || m.Value != float64(i) || m.Step != int64(i) {
				t.Errorf("point %d = %+v", i, m)
			}
		}
	}},

	{"get_metric_history_bulk_interval_rejects_invalid_requests", func(t *testing.T, c *mlflowClient) {
		for _, tc := range []struct {
			q    url.Values
			want string
		}{
			{url.Values{"metric_key": {"key"}}, "Missing value for required parameter 'run_ids'."},
			// requests drops an empty list: the same request as above.
			{url.Values{"run_ids": mfIDs("id_", 1000), "metric_key": {"key"}}, "GetMetricHistoryBulkInterval request must specify at most 100 run_ids."},
			{url.Values{"run_ids": {"123"}, "metric_key": {"key"}, "max_results": {"0"}}, "max_results must be between 1 and 2500"},
			{url.Values{"run_ids": {"123"}, "metric_key": {""}}, "Missing value for required parameter 'metric_key'"},
			{url.Values{"run_ids": {"123"}, "max_results": {"5"}}, "Missing value for required parameter 'metric_key'"},
			{url.Values{"run_ids": {"123"}, "metric_key": {"key"}, "start_step": {"1"}, "end_step": {"0"}, "max_results": {"5"}}, "end_step must be greater than start_step. "},
			{url.Values{"run_ids": {"123"}, "metric_key": {"key"}, "start_step": {"1"}, "max_results": {"5"}}, "If either start step or end step are specified, both must be specified."},
		} {
			status, out := c.s.JSON("GET", "/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval?"+tc.q.Encode(), nil)
			mlflowError(t, "bulk-interval "+tc.want, status, out, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", tc.want)
		}
	}},

	{"get_metric_history_bulk_interval_respects_max_results", func(t *testing.T, c *mlflowClient) {
		exp := c.createExperiment(uniqueName("get metric history bulk"))
		r1 := c.newRunID(exp)
		for i := range 10 {
			c.logMetric(r1, "metricA", 10, 1, int64(i))
		}
		interval := func(q url.Values) []mfMetric {
			t.Helper()
			q.Set("metric_key", "metricA")
			status, out := c.s.JSON("GET", "/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval?"+q.Encode(), nil)
			if status != http.StatusOK {
				t.Fatalf("bulk-interval %v: %d %v", q, status, out)
			}
			return mfTuples(mfList(out["metrics"]))
		}
		points := func(run string, steps []int64, timestamps ...int64) []mfMetric {
			var out []mfMetric
			for _, s := range steps {
				for _, ts := range timestamps {
					out = append(out, mfMetric{"metricA", 10, ts, s, run})
				}
			}
			return out
		}
		mfCheckMetrics(t, "max_results=5", interval(url.Values{"run_ids": {r1}, "max_results": {"5"}}), points(r1, []int64{0, 2, 4, 6, 8, 9}, 1))
		mfCheckMetrics(t, "steps 0..4", interval(url.Values{"run_ids": {r1}, "start_step": {"0"}, "end_step": {"4"}, "max_results": {"5"}}), points(r1, []int64{0, 1, 2, 3, 4}, 1))
		r2 := c.newRunID(exp)
		for i := range 20 {
			c.logMetric(r2, "metricA", 10, 1, int64(i))
		}
		// Steps are sampled over the union of the runs' steps.
		want := slices.Concat(points(r1, []int64{0, 4, 8, 9}, 1), points(r2, []int64{0, 4, 8, 9, 12, 16, 19}, 1))
		mfCheckMetrics(t, "two runs", interval(url.Values{"run_ids": {r1, r2}, "max_results": {"5"}}), want)
		for i := range 10 {
			c.logMetric(r1, "metricA", 10, 2, int64(i))
		}
		mfCheckMetrics(t, "same steps twice", interval(url.Values{"run_ids": {r1}, "max_results": {"5"}}), points(r1, []int64{0, 2, 4, 6, 8, 9}, 1, 2))
	}},

	// test_get_sampled_steps_from_steps unit-tests handlers.py's sampling;
	// over REST it is observed through get-history-bulk-interval with
	// start_step and end_step set to the range.
	{"get_sampled_steps_from_steps", func(t *testing.T, c *mlflowClient) {
		exp := c.createExperiment(uniqueName("sampled steps"))
		for _, tc := range []struct {
			min, max, maxResults int64
			nums                 []int64
			want                 []int64
		}{
			{0, 10, 5, mfSeq(0, 10, 1), []int64{0, 2, 4, 6, 8, 9}},
			{4, 8, 5, mfSeq(0, 10, 1), []int64{4, 5, 6, 7, 8}},
			{0, 100, 5, mfSeq(0, 101, 20), []int64{0, 20, 40, 60, 80, 100}},
			{0, 1000, 5, mfSeq(0, 1001, 10), []int64{0, 200, 400, 600, 800, 1000}},
		} {
			id := c.newRunID(exp)
			var metrics []map[string]any
			for _, s := range tc.nums {
				metrics = append(metrics, map[string]any{"key": "m", "value": 1, "timestamp": 1, "step": s})
			}
			c.ok("runs/log-batch", map[string]any{"run_id": id, "metrics": metrics})
			q := url.Values{"run_ids": {id}, "metric_key": {"m"}, "start_step": {fmt.Sprint(tc.min)}, "end_step": {fmt.Sprint(tc.max)}, "max_results": {fmt.Sprint(tc.maxResults)}}
			status, out := c.s.JSON("GET", "/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval?"+q.Encode(), nil)
			if status != http.StatusOK {
				t.Fatalf("bulk-interval: %d %v", status, out)
			}
			var got []int64
			for _, m := range mfTuples(mfList(out["metrics"])) {
				got = append(got, m.Step)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("(%d, %d, %d, %d steps): sampled %v, want %v", tc.min, tc.max, tc.maxResults, len(tc.nums), got, tc.want)
			}
		}
	}},

	// search-datasets is served under /ajax-api only (handlers.py
	// search_datasets_handler); MLflow's UI calls it.
	{"search_dataset_handler_rejects_invalid_requests", func(t *testing.T, c *mlflowClient) {
		for _, tc := range []struct {
			body map[string]any
			want string
		}{
			{map[string]any{}, "SearchDatasets request must specify at least one experiment_id."},
			{map[string]any{"experiment_ids": []string{}}, "SearchDatasets request must specify at least one experiment_id."},
			{map[string]any{"experiment_ids": mfIDs("id_", 1000)}, "SearchDatasets request cannot specify more than"},
		} {
			status, out := c.s.JSON("POST", "/ajax-api/2.0/mlflow/experiments/search-datasets", tc.body)
			mlflowError(t, "search-datasets", status, out, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", tc.want)
		}
	}},

	{"search_dataset_handler_returns_expected_results", func(t *testing.T, c *mlflowClient) {
		exp := c.createExperiment(uniqueName("log inputs test"))
		id := c.newRunID(exp)
		c.ok("runs/log-inputs", map[string]any{"run_id": id, "datasets": []any{map[string]any{
			"tags":    []map[string]string{{"key": "mlflow.data.context", "value": "training"}},
			"dataset": map[string]any{"name": "name1", "digest": "digest1", "source_type": "source_type1", "source": "source1"},
		}}})
		status, out := c.s.JSON("POST", "/ajax-api/2.0/mlflow/experiments/search-datasets", map[string]any{"experiment_ids": []string{exp}})
		want := []any{map[string]any{"experiment_id": exp, "name": "name1", "digest": "digest1", "context": "training"}}
		if status != http.StatusOK || !mfEqualJSON(out["dataset_summaries"], want) {
			t.Errorf("search-datasets: %d %v, want dataset_summaries %v", status, out, want)
		}
	}},

	// test_log_input logs a pandas dataset with mlflow.log_input; this is
	// the runs/log-inputs request that produces (RestStore.log_inputs).
	{"log_input", func(t *testing.T, c *mlflowClient) {
		id := c.newRunID("0")
		source := `{"uri": "/tmp/pytest/temp.csv"}`
		schema := `{"mlflow_colspec": [{"type": "long", "name": "a", "required": true}, {"type": "long", "name": "b", "required": true}, {"type": "long", "name": "c", "required": true}]}`
		profile := `{"num_rows": 2, "num_elements": 6}`
		c.ok("runs/log-inputs", map[string]any{"run_id": id, "datasets": []any{map[string]any{
			"tags": []map[string]string{{"key": "foo", "value": "baz"}, {"key": "mlflow.data.context", "value": "train"}},
			"dataset": map[string]any{"name": "dataset", "digest": "f0f3e026", "source_type": "local", "source": source,
				"schema": schema, "profile": profile},
		}}})
		inputs := mfList(mfDig(c.getRun(id), "inputs.dataset_inputs"))
		if len(inputs) != 1 {
			t.Fatalf("dataset_inputs = %v", inputs)
		}
		d := mfObj(inputs[0]["dataset"])
		if d["name"] != "dataset" || d["digest"] != "f0f3e026" || d["source_type"] != "local" || d["source"] != source || d["schema"] != schema || d["profile"] != profile {
			t.Errorf("dataset = %v", d)
		}
		tags := mfList(inputs[0]["tags"])
		if len(tags) != 2 || tags[0]["key"] != "foo" || tags[0]["value"] != "baz" || tags[1]["key"] != "mlflow.data.context" || tags[1]["value"] != "train" {
			t.Errorf("input tags = %v, want foo=baz then mlflow.data.context=train", tags)
		}
	}},

	{"log_inputs", func(t *testing.T, c *mlflowClient) {
		id := c.newRunID(c.createExperiment(uniqueName("log inputs test")))
		c.ok("runs/log-inputs", map[string]any{"run_id": id, "datasets": []any{map[string]any{
			"tags":    []map[string]string{{"key": "tag1", "value": "value1"}},
			"dataset": map[string]any{"name": "name1", "digest": "digest1", "source_type": "source_type1", "source": "source1"},
		}}})
		inputs := mfList(mfDig(c.getRun(id), "inputs.dataset_inputs"))
		if len(inputs) != 1 {
			t.Fatalf("dataset_inputs = %v", inputs)
		}
		d := mfObj(inputs[0]["dataset"])
		if d["name"] != "name1" || d["digest"] != "digest1" || d["source_type"] != "source_type1" || d["source"] != "source1" {
			t.Errorf("dataset = %v", d)
		}
		if tags := mfList(inputs[0]["tags"]); len(tags) != 1 || tags[0]["key"] != "tag1" || tags[0]["value"] != "value1" {
			t.Errorf("input tags = %v", tags)
		}
	}},

	{"log_inputs_validation", func(t *testing.T, c *mlflowClient) {
		id := c.newRunID(c.createExperiment(uniqueName("log inputs validation")))
		datasets := []any{map[string]any{"tags": []map[string]string{{"key": "tag1", "value": "value1"}},
			"dataset": map[string]any{"name": "name1", "digest": "digest1", "source_type": "source_type1", "source": "source1"}}}
		c.badRequestText("runs/log-inputs", map[string]any{"datasets": datasets}, "Missing value for required parameter 'run_id'")
		// MLflow 2.x's _log_inputs requires datasets (schema
		// "datasets": [_assert_required, _assert_array]).
		c.badRequestText("runs/log-inputs", map[string]any{"run_id": id}, "Missing value for required parameter 'datasets'")
	}},

	{"update_run_name_without_changing_status", func(t *testing.T, c *mlflowClient) {
		id := c.newRunID(c.createExperiment(uniqueName("update run name")))
		c.setTerminated(id, "FINISHED")
		// MlflowClient.update_run(run_id, name=...) sends status None.
		c.ok("runs/update", map[string]any{"run_uuid": id, "run_id": id, "run_name": "name_abc"})
		info := mfObj(c.getRun(id)["info"])
		if info["run_name"] != "name_abc" || info["status"] != "FINISHED" {
			t.Errorf("info = %v", info)
		}
	}},

	// upload-artifact is served under /ajax-api only (handlers.py
	// upload_artifact_handler); MLflow's UI calls it.
	{"upload_artifact_handler_rejects_invalid_requests", func(t *testing.T, c *mlflowClient) {
		id := c.newRunID(c.createExperiment(uniqueName("upload_artifacts_test")))
		for _, tc := range []struct {
			q    url.Values
			want string
		}{
			{url.Values{}, "Request must specify run_uuid."},
			{url.Values{"run_uuid": {id}}, "Request must specify path."},
			{url.Values{"run_uuid": {id}, "path": {""}}, "Request must specify path."},
			{url.Values{"run_uuid": {id}, "path": {"../test.txt"}}, "Invalid path"},
			{url.Values{"run_uuid": {id}, "path": {"test.txt"}}, "Request must specify data."},
		} {
			status, out := c.s.JSON("POST", "/ajax-api/2.0/mlflow/upload-artifact?"+tc.q.Encode(), nil)
			mlflowError(t, "upload-artifact "+tc.q.Encode(), status, out, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", tc.want)
		}
	}},

	{"upload_artifact_handler", func(t *testing.T, c *mlflowClient) {
		id := c.newRunID(c.createExperiment(uniqueName("upload_artifacts_test")))
		q := url.Values{"run_uuid": {id}, "path": {"test.txt"}}.Encode()
		status, _, body := mfRaw(t, "POST", c.s.URL+"/ajax-api/2.0/mlflow/upload-artifact?"+q, strings.NewReader("hello world"))
		if status != http.StatusOK {
			t.Fatalf("upload-artifact: %d %s", status, body)
		}
		status, _, body = mfRaw(t, "GET", c.s.URL+"/get-artifact?"+q, nil)
		if status != http.StatusOK || string(body) != "hello world" {
			t.Errorf("get-artifact: %d %q", status, body)
		}
	}},
}

func restCreateRunAllArgs(t *testing.T, c *mlflowClient, parent string) {
	tags := map[string]string{
		"mlflow.user": "username", "mlflow.source.type": "LOCAL", "mlflow.source.name": "Hello",
		"mlflow.project.entryPoint": "entry", "mlflow.source.git.commit": "abc", "mlflow.parentRunId": "7",
		"my": "tag", "other": "tag",
	}
	var tagList []map[string]string
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		tagList = append(tagList, map[string]string{"key": k, "value": tags[k]})
	}
	exp := c.createExperiment(uniqueName(fmt.Sprintf("Run A Lot (parent_run_id=%s)", parent)))
	created := c.createRun(exp, "user_id", "username", "start_time", 456, "tags", tagList, "run_name", "my name")
	id := mfRunID(created)
	fetched := c.getRun(id)
	runs, _ := c.searchRuns([]string{exp}, "", "ACTIVE_ONLY", 1000, nil, "")
	for which, run := range map[string]map[string]any{"created": created, "fetched": fetched} {
		info := mfObj(run["info"])
		start, _ := mfInt(info["start_time"])
		if info["run_id"] != id || info["run_uuid"] != id || info["experiment_id"] != exp || info["user_id"] != "username" ||
			start != 456 || info["run_name"] != "my name" {
			t.Errorf("%s run info = %v", which, info)
		}
		got := mfTags(run)
		for k, v := range tags {
			if got[k] != v {
				t.Errorf("%s run: tag %s = %q, want %q", which, k, got[k], v)
			}
		}
		if len(runs) != 1 || !mfEqualJSON(runs[0]["info"], info) {
			t.Errorf("search_runs infos = %v, want [%v]", runs, info)
		}
	}
}

func restSetTerminated(t *testing.T, c *mlflowClient, status, want string) {
	id := c.newRunID(c.createExperiment(uniqueName("Terminator")))
	info := mfObj(c.getRun(id)["info"])
	if info["status"] != "RUNNING" || info["end_time"] != nil {
		t.Fatalf("new run info = %v", info)
	}
	c.setTerminated(id, status)
	info = mfObj(c.getRun(id)["info"])
	end, ok := mfInt(info["end_time"])
	if info["status"] != want || !ok || end > time.Now().UnixMilli() {
		t.Errorf("terminated run info = %v, want status %s and an end_time", info, want)
	}
}

func mfCheckMetrics(t *testing.T, what string, got, want []mfMetric) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

func mfIDs(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}

func mfSeq(from, to, step int64) []int64 {
	var out []int64
	for i := from; i < to; i += step {
		out = append(out, i)
	}
	return out
}
