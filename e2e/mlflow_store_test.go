package e2e

// Store semantics MLflow's own store tests pin down, checked through the
// REST API a client uses: ports of the tests in MLflow 2.x
// tests/store/tracking/test_sqlalchemy_store.py (TestStore) and
// tests/utils/test_validation.py (TestValidation) whose behaviour is
// visible over HTTP: run name and mlflow.runName tag kept in sync, param
// immutability, NaN/±Inf metrics and the choice of a run's latest metric,
// length limits, lifecycle of deleted experiments and runs, ordering with
// missing and non-finite values, name validation and batch limits.
// Subtests are named after the Python tests they port.

import (
	"fmt"
	"math"
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestStore(t *testing.T) {
	s := Start(t)
	for _, tc := range storeCases {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, mlflowOn(s, t)) })
	}
}

var storeCases = []restCase{
	{"create_run_sets_name", func(t *testing.T, c *mlflowClient) {
		exp := c.createExperiment(uniqueName("test_create_run_run_name"))
		run := c.getRun(mfRunID(c.createRun(exp, "run_name", "run name")))
		if mfDig(run, "info.run_name") != "run name" || mfTags(run)["mlflow.runName"] != "run name" {
			t.Errorf("run_name %v, tag %q", mfDig(run, "info.run_name"), mfTags(run)["mlflow.runName"])
		}
		run = c.getRun(mfRunID(c.createRun(exp, "user_id", "user", "start_time", 0,
			"tags", []map[string]string{{"key": "mlflow.runName", "value": "test"}})))
		if mfDig(run, "info.run_name") != "test" {
			t.Errorf("name from mlflow.runName tag: %v", mfDig(run, "info.run_name"))
		}
		c.fails("runs/create", map[string]any{"experiment_id": exp, "user_id": "user", "start_time": 0, "run_name": "test",
			"tags": []map[string]string{{"key": "mlflow.runName", "value": "test_2"}}}, http.StatusBadRequest, "INVALID_PARAMETER_VALUE",
			"Both 'run_name' argument and 'mlflow.runName' tag are specified, but with different values (run_name='test', mlflow.runName='test_2').")
	}},

	// MLflow draws generated names from its word lists; Slipway from its
	// own. Both are "<word>-<word>-<number>".
	{"get_run_with_name", func(t *testing.T, c *mlflowClient) {
		exp := c.createExperiment(uniqueName("test_get_run"))
		if run := c.getRun(mfRunID(c.createRun(exp, "run_name", "named"))); mfDig(run, "info.run_name") != "named" {
			t.Errorf("run_name = %v", mfDig(run, "info.run_name"))
		}
		generated := regexp.MustCompile(`^[a-z]+-[a-z]+-\d+$`)
		for _, name := range []any{nil, ""} {
			run := c.getRun(mfRunID(c.createRun(exp, "run_name", name)))
			if n := mfStr(mfDig(run, "info.run_name")); !generated.MatchString(n) || mfTags(run)["mlflow.runName"] != n {
				t.Errorf("run_name %q (tag %q) for run_name=%v, want a generated name", n, mfTags(run)["mlflow.runName"], name)
			}
		}
	}},

	{"log_metric", func(t *testing.T, c *mlflowClient) {
		id := c.newRunID("0")
		now := time.Now().UnixMilli()
		c.logMetric(id, "blahmetric", 100.0, now, 0)
		c.logMetric(id, "blahmetric", 100.0, now+2, 0)
		c.logMetric(id, "NaN", "NaN", 0, 0)
		c.logMetric(id, "PosInf", "Infinity", 0, 0)
		c.logMetric(id, "NegInf", "-Infinity", 0, 0)
		m := mfMetrics(c.getRun(id))
		// The SQL store clamps ±Inf to ±max float; both read back as
		// at least that large, which is what clients can rely on.
		if len(m) != 4 || m["blahmetric"] != 100 || !math.IsNaN(m["NaN"]) || m["PosInf"] < math.MaxFloat64 || m["NegInf"] > -math.MaxFloat64 {
			t.Errorf("metrics = %v", m)
		}
		if h := c.metricHistory(id, "blahmetric"); len(h) != 2 {
			t.Errorf("history has %d points, want 2", len(h))
		}
	}},

	{"log_metric_allows_multiple_values_at_same_ts_and_run_data_uses_max_ts_value", func(t *testing.T, c *mlflowClient) {
		id := c.newRunID("0")
		logged := [][3]int64{{0, 100, 1000}, {3, 40, 100}, {3, 50, 10}, {3, 50, 20}, {3, 50, 20}, {-3, 900, 900}, {-1, 800, 800}}
		for i := len(logged) - 1; i >= 0; i-- {
			step, ts, v := logged[i][0], logged[i][1], logged[i][2]
			c.logMetric(id, "test-metric-1", float64(v), ts, step)
		}
		got := map[[3]int64]bool{}
		for _, m := range mfTuples(c.metricHistory(id, "test-metric-1")) {
			got[[3]int64{m.Step, m.Timestamp, int64(m.Value)}] = true
		}
		want := map[[3]int64]bool{}
		for _, l := range logged {
			want[l] = true
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("history (step, ts, value) = %v, want %v", got, want)
		}
		latest := mfTuples(mfList(mfDig(c.getRun(id), "data.metrics")))
		if len(latest) != 1 || latest[0] != (mfMetric{Key: "test-metric-1", Value: 20, Timestamp: 50, Step: 3}) {
			t.Errorf("run's metric = %+v, want step 3, timestamp 50, value 20", latest)
		}
	}},

	{"log_null_metric", func(t *testing.T, c *mlflowClient) {
		id := c.newRunID("0")
		c.fails("runs/log-metric", map[string]any{"run_id": id, "key": "blahmetric", "timestamp": time.Now().UnixMilli(), "step": 0},
			http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'value'")
	}},

	{"log_param", func(t *testing.T, c *mlflowClient) {
		id := c.newRunID("0")
		c.logParam(id, "blahmetric", "100.0")
		c.logParam(id, "new param", "new key")
		c.logParam(id, "new param", "new key")
		if p := mfParams(c.getRun(id)); len(p) != 2 || p["blahmetric"] != "100.0" {
			t.Errorf("params = %v", p)
		}
	}},

	{"log_param_uniqueness", func(t *testing.T, c *mlflowClient) {
		id := c.newRunID("0")
		c.logParam(id, "blahmetric", "100.0")
		c.fails("runs/log-parameter", map[string]any{"run_id": id, "key": "blahmetric", "value": "newval"},
			http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "Changing param values is not allowed")
	}},

	// From test_file_store.py: re-logging the same value succeeds, and a
	// refused change leaves the first value.
	{"log_param_enforces_value_immutability", func(t *testing.T, c *mlflowClient) {
		id := c.newRunID("0")
		c.logParam(id, "new param", "value1")
		c.logParam(id, "new param", "value1")
		c.fails("runs/log-parameter", map[string]any{"run_id": id, "key": "new param", "value": "value2"},
			http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "Changing param values is not allowed. Param with key=")
		if v := mfParams(c.getRun(id))["new param"]; v != "value1" {
			t.Errorf("param after a refused change = %q", v)
		}
	}},

	{"log_param_max_length_value", func(t *testing.T, c *mlflowClient) {
		id := c.newRunID("0")
		c.logParam(id, "blahmetric", strings.Repeat("x", 6000))
		if v := mfParams(c.getRun(id))["blahmetric"]; len(v) != 6000 {
			t.Errorf("6000-character param read back with %d", len(v))
		}
		c.fails("runs/log-parameter", map[string]any{"run_id": id, "key": "blahmetric", "value": strings.Repeat("x", 6001)},
			http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "exceeds the maximum length")
	}},

	{"set_experiment_tag", func(t *testing.T, c *mlflowClient) {
		id := c.createExperiment(uniqueName("setExperimentTagExp"))
		set := func(k, v string) (int, map[string]any) {
			return c.call("experiments/set-experiment-tag", map[string]any{"experiment_id": id, "key": k, "value": v})
		}
		set("tag0", "value0")
		set("tag0", "value00000")
		if v := mfKV(c.getExperiment(id)["tags"])["tag0"]; v != "value00000" {
			t.Errorf("tag0 = %q", v)
		}
		status, out := set("longTagKey", strings.Repeat("a", 100_001))
		mlflowError(t, "100001-character experiment tag", status, out, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "exceeds the maximum length of 5000")
		if status, out := set("longTagKey", strings.Repeat("a", 4999)); status != http.StatusOK {
			t.Errorf("4999-character experiment tag: %d %v", status, out)
		}
		c.ok("experiments/delete", map[string]any{"experiment_id": id})
		status, out = set("should", "notset")
		mlflowError(t, "tag on a deleted experiment", status, out, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "must be in the 'active' state")
	}},

	{"delete_experiment_tag", func(t *testing.T, c *mlflowClient) {
		id := c.createExperiment(uniqueName("setExperimentTagExp"))
		c.ok("experiments/set-experiment-tag", map[string]any{"experiment_id": id, "key": "tag0", "value": "value0"})
		c.ok("experiments/delete-experiment-tag", map[string]any{"experiment_id": id, "key": "tag0"})
		if _, ok := mfKV(c.getExperiment(id)["tags"])["tag0"]; ok {
			t.Errorf("tag0 still there")
		}
	}},

	{"set_tag", func(t *testing.T, c *mlflowClient) {
		id := c.newRunID("0")
		c.setTag(id, "test tag", "a boogie")
		c.setTag(id, "test tag", "new val")
		c.fails("runs/set-tag", map[string]any{"run_id": id, "key": "longTagKey", "value": strings.Repeat("a", 5001)},
			http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "exceeds the maximum length of 5000 characters")
		c.setTag(id, "longTagKey", strings.Repeat("a", 4999))
		if v := mfTags(c.getRun(id))["test tag"]; v != "new val" {
			t.Errorf("test tag = %q", v)
		}
	}},

	{"delete_tag", func(t *testing.T, c *mlflowClient) {
		exp := c.createExperiment(uniqueName("delete_tag"))
		id, id2 := c.newRunID(exp), c.newRunID(exp)
		c.setTag(id, "tag0", "val0")
		c.setTag(id, "tag1", "val1")
		c.ok("runs/delete-tag", map[string]any{"run_id": id, "key": "tag0"})
		if tags := mfTags(c.getRun(id)); tags["tag1"] != "val1" || tags["tag0"] != "" {
			t.Errorf("tags = %v", tags)
		}
		c.setTag(id, "tag0", "val0")
		c.setTag(id2, "tag0", "val0")
		c.ok("runs/delete-tag", map[string]any{"run_id": id, "key": "tag0"})
		if _, ok := mfTags(c.getRun(id2))["tag0"]; !ok {
			t.Errorf("deleting a tag of one run removed another run's")
		}
		c.fails("runs/delete-tag", map[string]any{"run_id": id, "key": "fakeTag"}, http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", "No tag with name")
		c.fails("runs/delete-tag", map[string]any{"run_id": "randomRunId", "key": "tag0"}, http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", "Run with id=randomRunId not found")
		c.ok("runs/delete", map[string]any{"run_id": id})
		c.fails("runs/delete-tag", map[string]any{"run_id": id, "key": "tag1"}, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "must be in the 'active' state")
	}},

	{"get_metric_history_with_page_token", func(t *testing.T, c *mlflowClient) {
		id := c.newRunID("0")
		for i := range 10 {
			c.logMetric(id, "test_metric", float64(i), int64(1000+i), int64(i))
		}
		page := func(token string, max int) ([]mfMetric, string) {
			msg := map[string]any{"run_id": id, "metric_key": "test_metric", "max_results": max}
			if token != "" {
				msg["page_token"] = token
			}
			out := c.ok("metrics/get-history", msg)
			return mfTuples(mfList(out["metrics"])), mfStr(out["next_page_token"])
		}
		var all []mfMetric
		token := ""
		for i, want := range []int{4, 4, 2} {
			got, next := page(token, 4)
			if len(got) != want || (next == "") != (i == 2) {
				t.Errorf("page %d: %d points, next token %q", i, len(got), next)
			}
			all, token = append(all, got...), next
		}
		for i, m := range all {
			if m.Value != float64(i) {
				t.Errorf("paged history[%d] = %+v", i, m)
			}
		}
		c.fails("metrics/get-history", map[string]any{"run_id": id, "metric_key": "test_metric", "page_token": "invalid_token"},
			http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "Invalid page token")
		if h := c.metricHistory(id, "test_metric"); len(h) != 10 {
			t.Errorf("unpaged history has %d points", len(h))
		}
	}},

	{"rename_experiment", func(t *testing.T, c *mlflowClient) {
		id := c.createExperiment(uniqueName("test name"))
		before := c.getExperiment(id)
		time.Sleep(10 * time.Millisecond)
		newName := uniqueName("new name")
		c.ok("experiments/update", map[string]any{"experiment_id": id, "new_name": newName})
		after := c.getExperiment(id)
		t0, _ := mfInt(before["last_update_time"])
		t1, _ := mfInt(after["last_update_time"])
		if after["name"] != newName || t1 <= t0 {
			t.Errorf("after rename: name %v, last_update_time %d (was %d)", after["name"], t1, t0)
		}
		c.fails("experiments/update", map[string]any{"experiment_id": id, "new_name": strings.Repeat("x", 501)},
			http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "'name' exceeds the maximum length")
	}},

	{"update_run_info", func(t *testing.T, c *mlflowClient) {
		exp := c.createExperiment(uniqueName("test_update_run_info"))
		var id string
		for _, status := range []string{"RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"} {
			id = c.newRunID(exp)
			end := time.Now().UnixMilli()
			info := mfObj(c.ok("runs/update", map[string]any{"run_id": id, "status": status, "end_time": end})["run_info"])
			if got, _ := mfInt(info["end_time"]); info["status"] != status || got != end {
				t.Errorf("update to %s: run_info %v", status, info)
			}
		}
		orig := mfObj(c.getRun(id)["info"])
		info := mfObj(c.ok("runs/update", map[string]any{"run_id": id, "run_name": "name_abc2"})["run_info"])
		if info["run_name"] != "name_abc2" || info["status"] != orig["status"] || !mfEqualJSON(info["end_time"], orig["end_time"]) {
			t.Errorf("rename only: run_info %v (was %v)", info, orig)
		}
	}},

	{"update_run_name", func(t *testing.T, c *mlflowClient) {
		id := mfRunID(c.createRun(c.createExperiment(uniqueName("test_update_run_name")), "run_name", "first name"))
		check := func(step, wantName string, wantTag any) {
			t.Helper()
			run := c.getRun(id)
			tag, has := mfTags(run)["mlflow.runName"]
			if mfDig(run, "info.run_name") != wantName || (wantTag == nil && has) || (wantTag != nil && tag != wantTag) {
				t.Errorf("after %s: run_name %v, mlflow.runName %q (present %v); want %q and %v", step, mfDig(run, "info.run_name"), tag, has, wantName, wantTag)
			}
		}
		update := func(name any) {
			msg := map[string]any{"run_id": id, "status": "FINISHED", "end_time": 1000}
			if name != nil {
				msg["run_name"] = name
			}
			c.ok("runs/update", msg)
		}
		update("new name")
		check("update run_name", "new name", "new name")
		update(nil)
		check("update without run_name", "new name", "new name")
		update("")
		check("update with empty run_name", "new name", "new name")
		c.ok("runs/delete-tag", map[string]any{"run_id": id, "key": "mlflow.runName"})
		check("delete mlflow.runName", "new name", nil)
		update("newer name")
		check("update after the tag was deleted", "newer name", "newer name")
		c.setTag(id, "mlflow.runName", "newest name")
		check("set-tag mlflow.runName", "newest name", "newest name")
		c.ok("runs/log-batch", map[string]any{"run_id": id, "tags": []map[string]string{{"key": "mlflow.runName", "value": "batch name"}}})
		check("log-batch mlflow.runName", "batch name", "batch name")
	}},

	{"restore_experiment", func(t *testing.T, c *mlflowClient) {
		id := c.createExperiment(uniqueName("helloexp"))
		c.ok("experiments/delete", map[string]any{"experiment_id": id})
		deleted := c.getExperiment(id)
		if deleted["lifecycle_stage"] != "deleted" || deleted["experiment_id"] != id {
			t.Errorf("deleted = %v", deleted)
		}
		time.Sleep(10 * time.Millisecond)
		c.ok("experiments/restore", map[string]any{"experiment_id": id})
		restored := c.getExperiment(id)
		t0, _ := mfInt(deleted["last_update_time"])
		t1, _ := mfInt(restored["last_update_time"])
		if restored["lifecycle_stage"] != "active" || t1 <= t0 {
			t.Errorf("restored = %v (last_update_time %d, was %d)", restored, t1, t0)
		}
	}},

	{"delete_restore_run", func(t *testing.T, c *mlflowClient) {
		id := c.newRunID("0")
		stage := func() any { return mfDig(c.getRun(id), "info.lifecycle_stage") }
		c.ok("runs/restore", map[string]any{"run_id": id}) // restoring an active run is a no-op
		c.ok("runs/delete", map[string]any{"run_id": id})
		c.ok("runs/delete", map[string]any{"run_id": id}) // deletion is idempotent
		if s := stage(); s != "deleted" {
			t.Errorf("after delete: %v", s)
		}
		c.ok("runs/restore", map[string]any{"run_id": id})
		c.ok("runs/restore", map[string]any{"run_id": id})
		if s := stage(); s != "active" {
			t.Errorf("after restore: %v", s)
		}
	}},

	{"error_logging_to_deleted_run", func(t *testing.T, c *mlflowClient) {
		id := c.newRunID(c.createExperiment(uniqueName("error_logging")))
		c.ok("runs/delete", map[string]any{"run_id": id})
		for _, req := range []struct {
			ep  string
			msg map[string]any
		}{
			{"runs/log-parameter", map[string]any{"run_id": id, "key": "p1345", "value": "v1"}},
			{"runs/log-metric", map[string]any{"run_id": id, "key": "m1345", "value": 1.0, "timestamp": 123, "step": 0}},
			{"runs/set-tag", map[string]any{"run_id": id, "key": "t1345", "value": "tv1"}},
		} {
			msg := c.fails(req.ep, req.msg, http.StatusBadRequest, "INVALID_PARAMETER_VALUE")
			if !mfMatches(`The run .+ must be in the 'active' state`, msg) {
				t.Errorf("%s on a deleted run: %q", req.ep, msg)
			}
		}
		c.ok("runs/restore", map[string]any{"run_id": id})
		c.logParam(id, "p1345", "v22")
		c.logMetric(id, "m1345", 34.0, 85, 1)
		c.setTag(id, "t1345", "tv44")
		run := c.getRun(id)
		if !reflect.DeepEqual(mfParams(run), map[string]string{"p1345": "v22"}) || !reflect.DeepEqual(mfMetrics(run), map[string]float64{"m1345": 34}) ||
			mfTags(run)["t1345"] != "tv44" {
			t.Errorf("run data after restore = %v", run["data"])
		}
		if h := mfTuples(c.metricHistory(id, "m1345")); len(h) != 1 || h[0] != (mfMetric{Key: "m1345", Value: 34, Timestamp: 85, Step: 1}) {
			t.Errorf("history = %+v", h)
		}
	}},

	// Ascending order puts -inf < numbers < inf, then NaN, then runs
	// without the metric (sqlalchemy_store._get_orderby_clauses).
	{"order_by_metric_tag_param", func(t *testing.T, c *mlflowClient) {
		exp := c.createExperiment(uniqueName("order_by_metric"))
		xs := []any{nil, "NaN", "Infinity", "-Infinity", -1000.0, 0.0, 0.0, 1000.0}
		names := []string{"None", "nan", "inf", "-inf", "-1000", "0", "0", "1000"}
		for i, x := range xs {
			y := fmt.Sprint(i + 1)
			id := mfRunID(c.createRun(exp, "user_id", "MrDuck", "start_time", 123, "run_name", names[i]+"/"+y,
				"tags", []map[string]string{{"key": "metric", "value": y}}))
			if x != nil {
				c.logMetric(id, "x", x, 1, 0)
				c.logMetric(id, "y", float64(i+1), 1, 0)
			}
			c.logParam(id, "metric", y)
		}
		order := func(orderBy ...string) []string {
			runs, _ := c.searchRuns([]string{exp}, "", "ALL", 1000, orderBy, "")
			var out []string
			for _, r := range runs {
				out = append(out, mfStr(mfDig(r, "info.run_name")))
			}
			return out
		}
		asc := []string{"-inf/4", "-1000/5", "0/6", "0/7", "1000/8", "inf/3", "nan/2", "None/1"}
		ascDesc := []string{"-inf/4", "-1000/5", "0/7", "0/6", "1000/8", "inf/3", "nan/2", "None/1"}
		for _, tc := range []struct {
			orderBy []string
			want    []string
		}{
			{[]string{"metrics.x asc", "metrics.y asc"}, asc},
			{[]string{"metrics.x asc", "tag.metric asc"}, asc},
			{[]string{"metrics.x asc", "metrics.y desc"}, ascDesc},
			{[]string{"metrics.x asc", "tag.metric desc"}, ascDesc},
			{[]string{"metrics.x desc", "metrics.y asc"}, []string{"inf/3", "1000/8", "0/6", "0/7", "-1000/5", "-inf/4", "nan/2", "None/1"}},
			{[]string{"metrics.x desc", "param.metric desc"}, []string{"inf/3", "1000/8", "0/7", "0/6", "-1000/5", "-inf/4", "nan/2", "None/1"}},
		} {
			if got := order(tc.orderBy...); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("order_by %v = %v, want %v", tc.orderBy, got, tc.want)
			}
		}
	}},

	{"order_by_attributes", func(t *testing.T, c *mlflowClient) {
		exp := c.createExperiment(uniqueName("order_by_attributes"))
		start := int64(123)
		for _, end := range []any{234, nil, 456, -123, 789, 123} {
			id := mfRunID(c.createRun(exp, "user_id", "MrDuck", "start_time", start, "run_name", fmt.Sprint(mfOr(end, "None"))))
			msg := map[string]any{"run_id": id, "status": "FINISHED"}
			if end != nil {
				msg["end_time"] = end
			}
			c.ok("runs/update", msg)
			start++
		}
		order := func(orderBy ...string) []string {
			runs, _ := c.searchRuns([]string{exp}, "", "ALL", 1000, orderBy, "")
			var out []string
			for _, r := range runs {
				out = append(out, mfStr(mfDig(r, "info.run_name")))
			}
			return out
		}
		for _, tc := range []struct {
			orderBy []string
			want    []string
		}{
			{[]string{"attribute.end_time asc"}, []string{"-123", "123", "234", "456", "789", "None"}},
			{[]string{"attribute.end_time desc"}, []string{"789", "456", "234", "123", "-123", "None"}},
			{[]string{"attribute.start_time asc", "attribute.end_time desc"}, []string{"234", "None", "456", "-123", "789", "123"}},
		} {
			if got := order(tc.orderBy...); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("order_by %v = %v, want %v", tc.orderBy, got, tc.want)
			}
		}
	}},

	{"search_vanilla", func(t *testing.T, c *mlflowClient) {
		exp := c.createExperiment(uniqueName("search_vanilla"))
		runs := []string{c.newRunID(exp), c.newRunID(exp), c.newRunID(exp)}
		search := func(view string) []string {
			got, _ := c.searchRuns([]string{exp}, "", view, 1000, nil, "")
			var out []string
			for _, r := range got {
				out = append(out, mfRunID(r))
			}
			return mfSorted(out)
		}
		check := func(step string, all, active, deleted []string) {
			t.Helper()
			if !reflect.DeepEqual(search("ALL"), mfSorted(all)) || !reflect.DeepEqual(search("ACTIVE_ONLY"), mfSorted(active)) ||
				!reflect.DeepEqual(search("DELETED_ONLY"), mfSorted(deleted)) {
				t.Errorf("%s: ALL %v ACTIVE %v DELETED %v", step, search("ALL"), search("ACTIVE_ONLY"), search("DELETED_ONLY"))
			}
		}
		check("created", runs, runs, nil)
		c.ok("runs/delete", map[string]any{"run_id": runs[0]})
		check("first deleted", runs, runs[1:], runs[:1])
		c.ok("runs/restore", map[string]any{"run_id": runs[0]})
		check("first restored", runs, runs, nil)
	}},
}

func TestValidation(t *testing.T) {
	s := Start(t)
	for _, tc := range []restCase{
		// test_validate_metric_name, _param_name, _tag_name: the names
		// the server accepts and refuses, through log-metric, log-parameter
		// and set-tag.
		{"validate_metric_param_tag_name", func(t *testing.T, c *mlflowClient) {
			id := c.newRunID("0")
			good := []string{"a", "Ab-5_", "a/b/c", "a.b.c", ".a", "b.", "a..a/._./o_O/.e.", "a b/c d"}
			bad := []string{"", ".", "/", "..", "//", "a//b", "a/./b", "/a", "a/", ":", "\\", "./", "/./"}
			requests := map[string]func(name string) (string, map[string]any){
				"metric": func(n string) (string, map[string]any) {
					return "runs/log-metric", map[string]any{"run_id": id, "key": n, "value": 1, "timestamp": 1, "step": 0}
				},
				"param": func(n string) (string, map[string]any) {
					return "runs/log-parameter", map[string]any{"run_id": id, "key": n, "value": "v"}
				},
				"tag": func(n string) (string, map[string]any) {
					return "runs/set-tag", map[string]any{"run_id": id, "key": n, "value": "v"}
				},
			}
			for kind, req := range requests {
				for _, n := range good {
					if status, out := c.call(req(n)); status != http.StatusOK {
						t.Errorf("%s name %q refused: %d %v", kind, n, status, out)
					}
				}
				for _, n := range bad {
					ep, msg := req(n)
					status, out := c.call(ep, msg)
					mlflowError(t, fmt.Sprintf("%s name %q", kind, n), status, out, http.StatusBadRequest, "INVALID_PARAMETER_VALUE")
				}
			}
		}},

		// test_validate_batch_log_limits: the per-kind and total limits of
		// log-batch, and their messages (mlflow/utils/validation.py
		// _validate_batch_limit).
		{"validate_batch_log_limits", func(t *testing.T, c *mlflowClient) {
			id := c.newRunID("0")
			metrics := func(n int) []map[string]any {
				out := make([]map[string]any, n)
				for i := range out {
					out[i] = map[string]any{"key": fmt.Sprintf("m%d", i), "value": i, "timestamp": 12345, "step": i * 2}
				}
				return out
			}
			kvs := func(prefix string, n int) []map[string]string {
				out := make([]map[string]string, n)
				for i := range out {
					out[i] = map[string]string{"key": fmt.Sprintf("%s%d", prefix, i), "value": "v"}
				}
				return out
			}
			for _, tc := range []struct {
				name string
				msg  map[string]any
				want string
			}{
				{"1001 metrics", map[string]any{"metrics": metrics(1001)}, "A batch logging request can contain at most 1000 metrics. Got 1001 metrics."},
				{"101 params", map[string]any{"params": kvs("p", 101)}, "A batch logging request can contain at most 100 params. Got 101 params."},
				{"101 tags", map[string]any{"tags": kvs("t", 101)}, "A batch logging request can contain at most 100 tags. Got 101 tags."},
				{"1001 in total", map[string]any{"metrics": metrics(900), "params": kvs("p", 100), "tags": kvs("t", 1)},
					"A batch logging request can contain at most 1000 metrics, params, and tags. Got 1001 metrics, params, and tags."},
			} {
				tc.msg["run_id"] = id
				status, out := c.call("runs/log-batch", tc.msg)
				mlflowError(t, tc.name, status, out, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", tc.want)
			}
			// test_log_batch_limits (sqlalchemy store): exactly at the
			// limit, every point is stored.
			c.ok("runs/log-batch", map[string]any{"run_id": id, "metrics": metrics(1000)})
			if n := len(mfMetrics(c.getRun(id))); n != 1000 {
				t.Errorf("after 1000 metrics the run has %d", n)
			}
			if h := mfTuples(c.metricHistory(id, "m999")); len(h) != 1 || h[0] != (mfMetric{Key: "m999", Value: 999, Timestamp: 12345, Step: 1998}) {
				t.Errorf("m999 history = %+v", h)
			}
		}},

		// test_log_batch_param_overwrite_disallowed (sqlalchemy store): a
		// batch that would change a param fails whole, logging nothing.
		{"log_batch_param_overwrite_disallowed", func(t *testing.T, c *mlflowClient) {
			id := c.newRunID("0")
			c.logParam(id, "my-param", "orig-val")
			c.fails("runs/log-batch", map[string]any{"run_id": id,
				"metrics": []map[string]any{{"key": "metric-key", "value": 3.0, "timestamp": 12345, "step": 0}},
				"params":  []map[string]string{{"key": "my-param", "value": "newval"}},
				"tags":    []map[string]string{{"key": "tag-key", "value": "tag-val"}}},
				http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "Changing param values is not allowed")
			run := c.getRun(id)
			if len(mfMetrics(run)) != 0 || mfTags(run)["tag-key"] != "" || !reflect.DeepEqual(mfParams(run), map[string]string{"my-param": "orig-val"}) {
				t.Errorf("a refused batch left data: %v", run["data"])
			}
		}},

		// test_log_batch_with_duplicate_params_errors_no_partial_write
		// (file store).
		{"log_batch_with_duplicate_params_errors_no_partial_write", func(t *testing.T, c *mlflowClient) {
			id := c.newRunID("0")
			c.fails("runs/log-batch", map[string]any{"run_id": id, "params": []map[string]string{{"key": "a", "value": "1"}, {"key": "a", "value": "2"}}},
				http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "Duplicate parameter keys have been submitted")
			if p := mfParams(c.getRun(id)); len(p) != 0 {
				t.Errorf("params after a refused batch: %v", p)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, mlflowOn(s, t)) })
	}
}

func mfOr(v, def any) any {
	if v == nil {
		return def
	}
	return v
}

func mfSorted(xs []string) []string {
	out := append([]string(nil), xs...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}
