package e2e

// Ports of MLflow 2.x tests/tracking/test_model_registry.py (the behaviour
// visible over REST), driven as MLflow's Python client drives the registry
// (mlflow/store/model_registry/rest_store.py): GET endpoints take query
// arguments, POST, PATCH and DELETE a JSON body. Slipway differs in one
// deliberate way: a version's source must hold real files (they are copied
// into registry storage), so each test logs a model to a run first where
// MLflow's tests use made-up paths.

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

// registryMethods are the HTTP methods of model_registry.proto's endpoints
// other than POST.
var registryMethods = map[string]string{
	"registered-models/get":                 "GET",
	"registered-models/search":              "GET",
	"registered-models/update":              "PATCH",
	"registered-models/delete":              "DELETE",
	"registered-models/delete-tag":          "DELETE",
	"model-versions/get":                    "GET",
	"model-versions/search":                 "GET",
	"model-versions/get-download-uri":       "GET",
	"model-versions/update":                 "PATCH",
	"model-versions/delete":                 "DELETE",
	"model-versions/delete-tag":             "DELETE",
	"model-versions/verify":                 "GET",
	"registered-models/get-latest-versions": "POST",
}

// reg sends a registry request; method overrides the table (for the alias
// endpoint, which is POST, DELETE and GET).
func (c *mlflowClient) reg(method, endpoint string, msg map[string]any) (int, map[string]any) {
	c.t.Helper()
	if method == "" {
		method = registryMethods[endpoint]
	}
	if method == "" {
		method = "POST"
	}
	path := "/api/2.0/mlflow/" + endpoint
	if method == "GET" {
		if q := mfQuery(msg); q != "" {
			path += "?" + q
		}
		return c.s.JSON("GET", path, nil)
	}
	if msg == nil {
		msg = map[string]any{}
	}
	return c.s.JSON(method, path, msg)
}

func (c *mlflowClient) regOK(method, endpoint string, msg map[string]any) map[string]any {
	c.t.Helper()
	status, out := c.reg(method, endpoint, msg)
	if status != http.StatusOK {
		c.t.Fatalf("%s %s %v: %d %v", method, endpoint, msg, status, out)
	}
	return out
}

func (c *mlflowClient) regFails(method, endpoint string, msg map[string]any, wantStatus int, wantCode string, substrs ...string) {
	c.t.Helper()
	status, out := c.reg(method, endpoint, msg)
	mlflowError(c.t, endpoint, status, out, wantStatus, wantCode, substrs...)
}

// logModel logs a small pyfunc-shaped model to a new run through the
// artifact proxy, as mlflow.pyfunc.log_model does, and returns the run id
// and the runs:/ URI of the model.
func (c *mlflowClient) logModel(expID string, weights string) (string, string) {
	c.t.Helper()
	run := c.createRun(expID)
	runID := mfRunID(run)
	root := mfArtifactPath(c.t, mfStr(mfDig(run, "info.artifact_uri")))
	c.putArtifact(root+"/model/MLmodel", "artifact_path: model\nflavors:\n  python_function:\n    loader_module: mlflow.pyfunc.model\n", "")
	c.putArtifact(root+"/model/python_model.pkl", weights, "application/octet-stream")
	c.putArtifact(root+"/model/requirements.txt", "mlflow\n", "")
	return runID, "runs:/" + runID + "/model"
}

func (c *mlflowClient) createModel(name string, extra ...any) map[string]any {
	c.t.Helper()
	msg := map[string]any{"name": name}
	for i := 0; i+1 < len(extra); i += 2 {
		msg[extra[i].(string)] = extra[i+1]
	}
	return mfObj(c.regOK("", "registered-models/create", msg)["registered_model"])
}

func (c *mlflowClient) createVersion(name, source, runID string) map[string]any {
	c.t.Helper()
	msg := map[string]any{"name": name, "source": source}
	if runID != "" {
		msg["run_id"] = runID
	}
	return mfObj(c.regOK("", "model-versions/create", msg)["model_version"])
}

func (c *mlflowClient) getVersion(name, version string) map[string]any {
	c.t.Helper()
	return mfObj(c.regOK("", "model-versions/get", map[string]any{"name": name, "version": version})["model_version"])
}

// downloadTree lists and downloads every file under an mlflow-artifacts
// URI as MlflowArtifactsRepository.download_artifacts does: list the
// directory through the proxy, recurse into directories, GET each file.
func (c *mlflowClient) downloadTree(uri string) map[string]string {
	c.t.Helper()
	out := map[string]string{}
	var walk func(dir, rel string)
	walk = func(dir, rel string) {
		status, listing := c.listProxy(dir)
		if status != http.StatusOK {
			c.t.Fatalf("list %s: %d %v", dir, status, listing)
		}
		for _, f := range mfList(listing["files"]) {
			name := mfStr(f["path"])
			if f["is_dir"] == true {
				walk(dir+"/"+name, rel+name+"/")
				continue
			}
			status, _, body := c.download(dir + "/" + name)
			if status != http.StatusOK {
				c.t.Fatalf("download %s/%s: %d %s", dir, name, status, body)
			}
			out[rel+name] = body
		}
	}
	walk(mfArtifactPath(c.t, uri), "")
	return out
}

func TestRegistry(t *testing.T) {
	s := Start(t)
	base := mlflowOn(s, t)
	exp := base.createExperiment("registry")

	t.Run("create_and_query_registered_model_flow", func(t *testing.T) {
		c := mlflowOn(s, t)
		start := time.Now().UnixMilli()
		rm := c.createModel("CreateRMTest", "tags", []map[string]any{{"key": "key", "value": "value"}, {"key": "anotherKey", "value": "some other value"}},
			"description", "my model description")
		if mfStr(rm["name"]) != "CreateRMTest" || mfStr(rm["description"]) != "my model description" {
			t.Fatalf("created %v", rm)
		}
		if want := map[string]string{"key": "value", "anotherKey": "some other value"}; !reflect.DeepEqual(mfKV(rm["tags"]), want) {
			t.Errorf("tags %v, want %v", mfKV(rm["tags"]), want)
		}
		ct, _ := mfInt(rm["creation_timestamp"])
		ut, _ := mfInt(rm["last_updated_timestamp"])
		if ct < start || ct != ut {
			t.Errorf("timestamps %d %d, start %d", ct, ut, start)
		}
		got := mfObj(c.regOK("", "registered-models/get", map[string]any{"name": "CreateRMTest"})["registered_model"])
		if !mfEqualJSON(got, rm) {
			t.Errorf("get %v, create %v", got, rm)
		}
		c.regFails("", "registered-models/create", map[string]any{"name": "CreateRMTest"}, 400, "RESOURCE_ALREADY_EXISTS", "Registered Model (name=CreateRMTest) already exists.")
		c.regFails("", "registered-models/create", map[string]any{}, 400, "INVALID_PARAMETER_VALUE", "'name'")
		c.regFails("", "registered-models/get", map[string]any{"name": "nope"}, 404, "RESOURCE_DOES_NOT_EXIST", "Registered Model with name=nope not found")
		found := c.regOK("", "registered-models/search", map[string]any{"filter": "name = 'CreateRMTest'", "max_results": 100})
		if l := mfList(found["registered_models"]); len(l) != 1 || mfStr(l[0]["name"]) != "CreateRMTest" {
			t.Errorf("search %v", found)
		}
	})

	t.Run("update_registered_model_flow", func(t *testing.T) {
		c := mlflowOn(s, t)
		rm := c.createModel("UpdateRMTest")
		before, _ := mfInt(rm["last_updated_timestamp"])
		time.Sleep(2 * time.Millisecond)
		got := mfObj(c.regOK("", "registered-models/update", map[string]any{"name": "UpdateRMTest", "description": "test model"})["registered_model"])
		after, _ := mfInt(got["last_updated_timestamp"])
		if mfStr(got["description"]) != "test model" || after <= before {
			t.Errorf("updated %v", got)
		}
		c.regFails("", "registered-models/update", map[string]any{"name": "nope", "description": "x"}, 404, "RESOURCE_DOES_NOT_EXIST")
	})

	t.Run("rename_registered_model_flow", func(t *testing.T) {
		c := mlflowOn(s, t)
		runID, src := c.logModel(exp, "weights-rename")
		c.createModel("RenameRMTest")
		c.createVersion("RenameRMTest", src, runID)
		c.createModel("RenameTaken")
		got := mfObj(c.regOK("", "registered-models/rename", map[string]any{"name": "RenameRMTest", "new_name": "RenamedRM"})["registered_model"])
		if mfStr(got["name"]) != "RenamedRM" {
			t.Fatalf("renamed %v", got)
		}
		c.regFails("", "registered-models/get", map[string]any{"name": "RenameRMTest"}, 404, "RESOURCE_DOES_NOT_EXIST")
		c.regFails("", "registered-models/rename", map[string]any{"name": "RenamedRM", "new_name": "RenameTaken"}, 400, "RESOURCE_ALREADY_EXISTS", "Registered Model (name=RenameTaken) already exists.")
		c.regFails("", "registered-models/rename", map[string]any{"name": "RenamedRM"}, 400, "INVALID_PARAMETER_VALUE", "'new_name'")
		c.regFails("", "registered-models/rename", map[string]any{"name": "nope", "new_name": "x"}, 404, "RESOURCE_DOES_NOT_EXIST")
		// The version's files are still reachable under the new name.
		uri := mfStr(c.regOK("", "model-versions/get-download-uri", map[string]any{"name": "RenamedRM", "version": "1"})["artifact_uri"])
		if files := c.downloadTree(uri); files["python_model.pkl"] != "weights-rename" {
			t.Errorf("files after rename: %v", files)
		}
		if v := c.getVersion("RenamedRM", "1"); mfStr(v["name"]) != "RenamedRM" {
			t.Errorf("version after rename: %v", v)
		}
	})

	t.Run("delete_registered_model_flow", func(t *testing.T) {
		c := mlflowOn(s, t)
		runID, src := c.logModel(exp, "w")
		c.createModel("DeleteRMTest")
		c.createVersion("DeleteRMTest", src, runID)
		c.regOK("", "registered-models/delete", map[string]any{"name": "DeleteRMTest"})
		c.regFails("", "registered-models/get", map[string]any{"name": "DeleteRMTest"}, 404, "RESOURCE_DOES_NOT_EXIST")
		c.regFails("", "model-versions/get", map[string]any{"name": "DeleteRMTest", "version": "1"}, 404, "RESOURCE_DOES_NOT_EXIST")
		c.regFails("", "registered-models/delete", map[string]any{"name": "DeleteRMTest"}, 404, "RESOURCE_DOES_NOT_EXIST")
		// The name can be used again, from version 1.
		c.createModel("DeleteRMTest")
		if v := c.createVersion("DeleteRMTest", src, runID); mfStr(v["version"]) != "1" {
			t.Errorf("recreated model's first version is %v", v["version"])
		}
		// Query-string DELETE, as curl users send it.
		status, out := s.JSON("DELETE", "/api/2.0/mlflow/registered-models/delete?name=DeleteRMTest", nil)
		if status != 200 {
			t.Errorf("DELETE with query args: %d %v", status, out)
		}
	})

	t.Run("set_delete_registered_model_tag_flow", func(t *testing.T) {
		c := mlflowOn(s, t)
		c.createModel("SetDeleteRMTagTest")
		c.regOK("", "registered-models/set-tag", map[string]any{"name": "SetDeleteRMTagTest", "key": "key", "value": "value"})
		c.regOK("", "registered-models/set-tag", map[string]any{"name": "SetDeleteRMTagTest", "key": "anotherKey", "value": "some other value"})
		c.regOK("", "registered-models/set-tag", map[string]any{"name": "SetDeleteRMTagTest", "key": "key", "value": "overriding value"})
		c.regOK("", "registered-models/set-tag", map[string]any{"name": "SetDeleteRMTagTest", "key": "empty", "value": ""})
		rm := mfObj(c.regOK("", "registered-models/get", map[string]any{"name": "SetDeleteRMTagTest"})["registered_model"])
		if want := map[string]string{"key": "overriding value", "anotherKey": "some other value", "empty": ""}; !reflect.DeepEqual(mfKV(rm["tags"]), want) {
			t.Errorf("tags %v, want %v", mfKV(rm["tags"]), want)
		}
		c.regOK("", "registered-models/delete-tag", map[string]any{"name": "SetDeleteRMTagTest", "key": "anotherKey"})
		c.regOK("", "registered-models/delete-tag", map[string]any{"name": "SetDeleteRMTagTest", "key": "never-set"})
		rm = mfObj(c.regOK("", "registered-models/get", map[string]any{"name": "SetDeleteRMTagTest"})["registered_model"])
		if _, ok := mfKV(rm["tags"])["anotherKey"]; ok {
			t.Errorf("deleted tag remains: %v", rm["tags"])
		}
		c.regFails("", "registered-models/set-tag", map[string]any{"name": "SetDeleteRMTagTest", "key": "../x", "value": "v"}, 400, "INVALID_PARAMETER_VALUE", "'key'")
		c.regFails("", "registered-models/set-tag", map[string]any{"name": "nope", "key": "k", "value": "v"}, 404, "RESOURCE_DOES_NOT_EXIST")
		c.regFails("", "registered-models/delete-tag", map[string]any{"name": "nope", "key": "k"}, 404, "RESOURCE_DOES_NOT_EXIST")
	})

	t.Run("create_and_query_model_version_flow", func(t *testing.T) {
		c := mlflowOn(s, t)
		runID, src := c.logModel(exp, "weights-v1")
		c.createModel("CreateMVTest")
		start := time.Now().UnixMilli()
		mv := c.createVersion("CreateMVTest", src, runID)
		want := map[string]any{"name": "CreateMVTest", "version": "1", "current_stage": "None", "status": "READY",
			"source": src, "run_id": runID, "description": "", "run_link": ""}
		for k, v := range want {
			if mfStr(mv[k]) != v {
				t.Errorf("%s = %v, want %v", k, mv[k], v)
			}
		}
		if ct, _ := mfInt(mv["creation_timestamp"]); ct < start {
			t.Errorf("creation_timestamp %d before %d", ct, start)
		}
		if !mfEqualJSON(c.getVersion("CreateMVTest", "1"), mv) {
			t.Errorf("get differs from create")
		}
		mv2 := c.createVersion("CreateMVTest", src, "")
		if mfStr(mv2["version"]) != "2" {
			t.Errorf("second version %v", mv2["version"])
		}
		found := mfList(c.regOK("", "model-versions/search", map[string]any{"filter": "run_id = '" + runID + "'", "max_results": 10000})["model_versions"])
		if len(found) != 1 || mfStr(found[0]["version"]) != "1" {
			t.Errorf("search by run_id: %v", found)
		}
		rm := mfObj(c.regOK("", "registered-models/get", map[string]any{"name": "CreateMVTest"})["registered_model"])
		if lv := mfList(rm["latest_versions"]); len(lv) != 1 || mfStr(lv[0]["version"]) != "2" {
			t.Errorf("latest_versions %v", rm["latest_versions"])
		}
		c.regFails("", "model-versions/create", map[string]any{"name": "nope", "source": src}, 404, "RESOURCE_DOES_NOT_EXIST")
		c.regFails("", "model-versions/create", map[string]any{"name": "CreateMVTest"}, 400, "INVALID_PARAMETER_VALUE", "'source'")
		c.regFails("", "model-versions/get", map[string]any{"name": "CreateMVTest", "version": "abc"}, 400, "INVALID_PARAMETER_VALUE", "Parameter 'version' must be an integer, got 'abc'.")
		c.regFails("", "model-versions/get", map[string]any{"name": "CreateMVTest", "version": "9"}, 404, "RESOURCE_DOES_NOT_EXIST", "Model Version (name=CreateMVTest, version=9) not found")
	})

	t.Run("get_model_version_download_uri", func(t *testing.T) {
		c := mlflowOn(s, t)
		runID, src := c.logModel(exp, "weights-download")
		c.createModel("DownloadMVTest")
		c.createVersion("DownloadMVTest", src, runID)
		uri := mfStr(c.regOK("", "model-versions/get-download-uri", map[string]any{"name": "DownloadMVTest", "version": "1"})["artifact_uri"])
		if !strings.HasPrefix(uri, "mlflow-artifacts:/registry/") {
			t.Fatalf("download uri %q", uri)
		}
		files := c.downloadTree(uri)
		if files["python_model.pkl"] != "weights-download" || !strings.Contains(files["MLmodel"], "python_function") || len(files) != 3 {
			t.Errorf("downloaded %v", files)
		}
		// MLflow's UI route.
		status, _, body := mfRaw(t, "GET", s.URL+"/ajax-api/2.0/mlflow/model-versions/get-artifact?"+
			url.Values{"name": {"DownloadMVTest"}, "version": {"1"}, "path": {"python_model.pkl"}}.Encode(), nil)
		if status != 200 || string(body) != "weights-download" {
			t.Errorf("get-artifact: %d %q", status, body)
		}
	})

	t.Run("update_model_version_flow", func(t *testing.T) {
		c := mlflowOn(s, t)
		runID, src := c.logModel(exp, "w")
		c.createModel("UpdateMVTest")
		c.createVersion("UpdateMVTest", src, runID)
		c.createVersion("UpdateMVTest", src, runID)
		mv := mfObj(c.regOK("", "model-versions/transition-stage", map[string]any{"name": "UpdateMVTest", "version": "1", "stage": "Staging", "archive_existing_versions": false})["model_version"])
		if mfStr(mv["current_stage"]) != "Staging" {
			t.Errorf("stage %v", mv["current_stage"])
		}
		mv = mfObj(c.regOK("", "model-versions/transition-stage", map[string]any{"name": "UpdateMVTest", "version": "2", "stage": "staging", "archive_existing_versions": true})["model_version"])
		if mfStr(mv["current_stage"]) != "Staging" || mfStr(c.getVersion("UpdateMVTest", "1")["current_stage"]) != "Archived" {
			t.Errorf("archive_existing_versions: v2 %v, v1 %v", mv["current_stage"], c.getVersion("UpdateMVTest", "1")["current_stage"])
		}
		c.regFails("", "model-versions/transition-stage", map[string]any{"name": "UpdateMVTest", "version": "2", "stage": "Cheese", "archive_existing_versions": false},
			400, "INVALID_PARAMETER_VALUE", "Invalid Model Version stage: Cheese")
		c.regFails("", "model-versions/transition-stage", map[string]any{"name": "UpdateMVTest", "version": "2", "stage": "Archived", "archive_existing_versions": true},
			400, "INVALID_PARAMETER_VALUE", "not an Active stage")
		mv = mfObj(c.regOK("", "model-versions/update", map[string]any{"name": "UpdateMVTest", "version": "1", "description": "test model version"})["model_version"])
		if mfStr(mv["description"]) != "test model version" || mfStr(mv["current_stage"]) != "Archived" {
			t.Errorf("update %v", mv)
		}
	})

	t.Run("latest_models", func(t *testing.T) {
		c := mlflowOn(s, t)
		runID, src := c.logModel(exp, "w")
		c.createModel("LatestMVTest")
		for _, st := range []string{"None", "Production", "Staging", "None", "Production"} {
			v := c.createVersion("LatestMVTest", src, runID)
			c.regOK("", "model-versions/transition-stage", map[string]any{"name": "LatestMVTest", "version": mfStr(v["version"]), "stage": st, "archive_existing_versions": false})
		}
		latest := func(method string, stages ...string) map[string]string {
			msg := map[string]any{"name": "LatestMVTest"}
			if len(stages) > 0 {
				msg["stages"] = stages
			}
			out := c.regOK(method, "registered-models/get-latest-versions", msg)
			got := map[string]string{}
			for _, v := range mfList(out["model_versions"]) {
				got[mfStr(v["current_stage"])] = mfStr(v["version"])
			}
			return got
		}
		if g, w := latest("POST"), map[string]string{"None": "4", "Production": "5", "Staging": "3"}; !reflect.DeepEqual(g, w) {
			t.Errorf("all stages: %v, want %v", g, w)
		}
		if g, w := latest("GET", "production"), map[string]string{"Production": "5"}; !reflect.DeepEqual(g, w) {
			t.Errorf("production: %v, want %v", g, w)
		}
		if g, w := latest("POST", "None", "Staging"), map[string]string{"None": "4", "Staging": "3"}; !reflect.DeepEqual(g, w) {
			t.Errorf("None, Staging: %v, want %v", g, w)
		}
		c.regFails("POST", "registered-models/get-latest-versions", map[string]any{"name": "LatestMVTest", "stages": []string{"Cheese"}}, 400, "INVALID_PARAMETER_VALUE")
	})

	t.Run("delete_model_version_flow", func(t *testing.T) {
		c := mlflowOn(s, t)
		runID, src := c.logModel(exp, "w")
		c.createModel("DeleteMVTest")
		for range 3 {
			c.createVersion("DeleteMVTest", src, runID)
		}
		c.regOK("", "registered-models/alias", map[string]any{"name": "DeleteMVTest", "alias": "champ", "version": "3"})
		uri := mfStr(c.regOK("", "model-versions/get-download-uri", map[string]any{"name": "DeleteMVTest", "version": "3"})["artifact_uri"])
		c.regOK("", "model-versions/delete", map[string]any{"name": "DeleteMVTest", "version": "3"})
		c.regFails("", "model-versions/get", map[string]any{"name": "DeleteMVTest", "version": "3"}, 404, "RESOURCE_DOES_NOT_EXIST")
		c.regFails("", "model-versions/delete", map[string]any{"name": "DeleteMVTest", "version": "3"}, 404, "RESOURCE_DOES_NOT_EXIST")
		rm := mfObj(c.regOK("", "registered-models/get", map[string]any{"name": "DeleteMVTest"})["registered_model"])
		if lv := mfList(rm["latest_versions"]); len(lv) != 1 || mfStr(lv[0]["version"]) != "2" || rm["aliases"] != nil {
			t.Errorf("after delete: %v", rm)
		}
		if status, _, _ := c.download(mfArtifactPath(t, uri) + "/python_model.pkl"); status != 404 {
			t.Errorf("deleted version's file still served: %d", status)
		}
		if v := c.createVersion("DeleteMVTest", src, runID); mfStr(v["version"]) != "4" {
			t.Errorf("version after delete %v, want 4 (numbers are not reused)", v["version"])
		}
		vs := mfList(c.regOK("", "model-versions/search", map[string]any{"filter": "name='DeleteMVTest'"})["model_versions"])
		if len(vs) != 3 {
			t.Errorf("search lists %d versions, want 3", len(vs))
		}
	})

	t.Run("set_delete_model_version_tag_flow", func(t *testing.T) {
		c := mlflowOn(s, t)
		runID, src := c.logModel(exp, "w")
		c.createModel("SetDeleteMVTagTest")
		c.createVersion("SetDeleteMVTagTest", src, runID)
		ref := func(kv ...string) map[string]any {
			m := map[string]any{"name": "SetDeleteMVTagTest", "version": "1"}
			for i := 0; i+1 < len(kv); i += 2 {
				m[kv[i]] = kv[i+1]
			}
			return m
		}
		c.regOK("", "model-versions/set-tag", ref("key", "key", "value", "value"))
		c.regOK("", "model-versions/set-tag", ref("key", "anotherKey", "value", "some other value"))
		c.regOK("", "model-versions/set-tag", ref("key", "key", "value", "overriding value"))
		c.regOK("", "model-versions/set-tag", ref("key", "empty", "value", ""))
		if got, want := mfKV(c.getVersion("SetDeleteMVTagTest", "1")["tags"]), map[string]string{"key": "overriding value", "anotherKey": "some other value", "empty": ""}; !reflect.DeepEqual(got, want) {
			t.Errorf("tags %v, want %v", got, want)
		}
		c.regOK("", "model-versions/delete-tag", ref("key", "anotherKey"))
		if _, ok := mfKV(c.getVersion("SetDeleteMVTagTest", "1")["tags"])["anotherKey"]; ok {
			t.Errorf("deleted tag remains")
		}
		c.regFails("", "model-versions/set-tag", map[string]any{"name": "SetDeleteMVTagTest", "version": "7", "key": "k", "value": "v"}, 404, "RESOURCE_DOES_NOT_EXIST")
		c.regFails("", "model-versions/set-tag", ref("key", "", "value", "v"), 400, "INVALID_PARAMETER_VALUE", "'key'")
	})

	t.Run("set_registered_model_alias_and_get_model_version_by_alias_flow", func(t *testing.T) {
		c := mlflowOn(s, t)
		runID, src := c.logModel(exp, "w")
		c.createModel("AliasTest")
		c.createVersion("AliasTest", src, runID)
		c.createVersion("AliasTest", src, runID)
		c.regOK("", "registered-models/alias", map[string]any{"name": "AliasTest", "alias": "test_alias", "version": "1"})
		c.regOK("", "registered-models/alias", map[string]any{"name": "AliasTest", "alias": "another", "version": "1"})
		mv := mfObj(c.regOK("GET", "registered-models/alias", map[string]any{"name": "AliasTest", "alias": "test_alias"})["model_version"])
		aliases, _ := mv["aliases"].([]any)
		if mfStr(mv["version"]) != "1" || len(aliases) != 2 {
			t.Errorf("by alias %v", mv)
		}
		// Moving an alias.
		c.regOK("", "registered-models/alias", map[string]any{"name": "AliasTest", "alias": "test_alias", "version": "2"})
		rm := mfObj(c.regOK("", "registered-models/get", map[string]any{"name": "AliasTest"})["registered_model"])
		got := map[string]string{}
		for _, a := range mfList(rm["aliases"]) {
			got[mfStr(a["alias"])] = mfStr(a["version"])
		}
		if want := map[string]string{"test_alias": "2", "another": "1"}; !reflect.DeepEqual(got, want) {
			t.Errorf("aliases %v, want %v", got, want)
		}
		c.regFails("", "registered-models/alias", map[string]any{"name": "AliasTest", "alias": "latest", "version": "1"}, 400, "INVALID_PARAMETER_VALUE", "reserved")
		c.regFails("", "registered-models/alias", map[string]any{"name": "AliasTest", "alias": "v1", "version": "1"}, 400, "INVALID_PARAMETER_VALUE", "reserved")
		c.regFails("", "registered-models/alias", map[string]any{"name": "AliasTest", "alias": "a b", "version": "1"}, 400, "INVALID_PARAMETER_VALUE", "Invalid alias name")
		c.regFails("", "registered-models/alias", map[string]any{"name": "AliasTest", "alias": "x", "version": "9"}, 404, "RESOURCE_DOES_NOT_EXIST")

		// delete_registered_model_alias_flow
		c.regOK("DELETE", "registered-models/alias", map[string]any{"name": "AliasTest", "alias": "test_alias"})
		c.regFails("GET", "registered-models/alias", map[string]any{"name": "AliasTest", "alias": "test_alias"}, 400, "INVALID_PARAMETER_VALUE", "Registered model alias test_alias not found.")
		c.regOK("DELETE", "registered-models/alias", map[string]any{"name": "AliasTest", "alias": "test_alias"})
		// models:/name@alias as a source.
		v := c.createVersion("AliasTest", "models:/AliasTest@another", "")
		if mfStr(v["version"]) != "3" || mfStr(v["source"]) != "models:/AliasTest@another" {
			t.Errorf("version from alias %v", v)
		}
	})

	t.Run("search_registered_models", func(t *testing.T) {
		c := mlflowOn(s, t)
		names := []string{"srch-RM1", "srch-RM2", "srch-RM3", "srch-RM4", "srch-rm5"}
		for i, n := range names {
			c.createModel(n, "tags", []map[string]any{{"key": "parity", "value": []string{"even", "odd"}[i%2]}})
		}
		search := func(filter string, orderBy []string, max int) []string {
			var out []string
			tok := ""
			for {
				msg := map[string]any{"filter": filter, "max_results": max}
				if len(orderBy) > 0 {
					msg["order_by"] = orderBy
				}
				if tok != "" {
					msg["page_token"] = tok
				}
				page := c.regOK("", "registered-models/search", msg)
				for _, m := range mfList(page["registered_models"]) {
					out = append(out, mfStr(m["name"]))
				}
				if tok = mfStr(page["next_page_token"]); tok == "" {
					return out
				}
			}
		}
		cases := []struct {
			filter  string
			orderBy []string
			want    []string
		}{
			{"name LIKE 'srch-%'", nil, []string{"srch-RM1", "srch-RM2", "srch-RM3", "srch-RM4", "srch-rm5"}},
			{"name ILIKE 'SRCH-rm%'", []string{"name DESC"}, []string{"srch-rm5", "srch-RM4", "srch-RM3", "srch-RM2", "srch-RM1"}},
			{"name LIKE 'srch-RM%'", nil, []string{"srch-RM1", "srch-RM2", "srch-RM3", "srch-RM4"}},
			{"name = 'srch-RM3'", nil, []string{"srch-RM3"}},
			{"name LIKE 'srch-%' AND tags.parity = 'odd'", nil, []string{"srch-RM2", "srch-RM4"}},
			{"name LIKE 'srch-%'", []string{"last_updated_timestamp DESC"}, []string{"srch-rm5", "srch-RM4", "srch-RM3", "srch-RM2", "srch-RM1"}},
		}
		for _, cs := range cases {
			for _, max := range []int{1, 2, 100} {
				if got := search(cs.filter, cs.orderBy, max); !reflect.DeepEqual(got, cs.want) {
					t.Errorf("%q %v max %d: %v, want %v", cs.filter, cs.orderBy, max, got, cs.want)
				}
			}
		}
		c.regFails("", "registered-models/search", map[string]any{"filter": "bogus = 'x'"}, 400, "INVALID_PARAMETER_VALUE", "Invalid attribute key")
		c.regFails("", "registered-models/search", map[string]any{"max_results": 1001}, 400, "INVALID_PARAMETER_VALUE", "1000")
		c.regFails("", "registered-models/search", map[string]any{"page_token": "evilhax"}, 400, "INVALID_PARAMETER_VALUE", "page token")
		c.regFails("", "registered-models/search", map[string]any{"order_by": []string{"creation_timestamp"}}, 400, "INVALID_PARAMETER_VALUE", "Invalid order by key")
	})

	t.Run("search_model_versions", func(t *testing.T) {
		c := mlflowOn(s, t)
		runA, srcA := c.logModel(exp, "a")
		runB, srcB := c.logModel(exp, "b")
		c.createModel("SearchMV")
		c.createVersion("SearchMV", srcA, runA)
		c.createVersion("SearchMV", srcB, runB)
		c.createVersion("SearchMV", srcB, runB)
		c.regOK("", "model-versions/set-tag", map[string]any{"name": "SearchMV", "version": "2", "key": "validation", "value": "passed"})
		versions := func(filter string, orderBy ...string) []string {
			msg := map[string]any{"filter": filter, "max_results": 10000}
			if len(orderBy) > 0 {
				msg["order_by"] = orderBy
			}
			var out []string
			for _, v := range mfList(c.regOK("", "model-versions/search", msg)["model_versions"]) {
				out = append(out, mfStr(v["version"]))
			}
			return out
		}
		for _, cs := range []struct {
			filter  string
			orderBy []string
			want    []string
		}{
			{"name = 'SearchMV'", nil, []string{"3", "2", "1"}},
			{"name = 'SearchMV'", []string{"version_number ASC"}, []string{"1", "2", "3"}},
			{"run_id = '" + runB + "'", nil, []string{"3", "2"}},
			{"run_id IN ('" + runA + "', '" + runB + "')", []string{"version_number"}, []string{"1", "2", "3"}},
			{"name = 'SearchMV' AND tags.validation = 'passed'", nil, []string{"2"}},
			{"name = 'SearchMV' AND version_number > 1", nil, []string{"3", "2"}},
			{"source_path = '" + srcA + "'", nil, []string{"1"}},
		} {
			if got := versions(cs.filter, cs.orderBy...); !reflect.DeepEqual(got, cs.want) {
				t.Errorf("%q %v: %v, want %v", cs.filter, cs.orderBy, got, cs.want)
			}
		}
		c.regFails("", "model-versions/search", map[string]any{"filter": "stage = 'x'"}, 400, "INVALID_PARAMETER_VALUE", "Invalid attribute key")
		c.regFails("", "model-versions/search", map[string]any{"max_results": 200001}, 400, "INVALID_PARAMETER_VALUE")
	})

	t.Run("registered_version_survives_its_run", func(t *testing.T) {
		c := mlflowOn(s, t)
		runID, src := c.logModel(exp, "weights-survive")
		c.createModel("SurviveTest")
		c.createVersion("SurviveTest", src, runID)
		root := mfArtifactPath(t, mfStr(mfDig(c.getRun(runID), "info.artifact_uri")))
		c.ok("runs/delete", map[string]any{"run_id": runID})
		if status, _, body := mfRaw(t, "DELETE", s.URL+"/api/2.0/mlflow-artifacts/artifacts/"+root, nil); status != 200 {
			t.Fatalf("delete run artifacts: %d %s", status, body)
		}
		uri := mfStr(c.regOK("", "model-versions/get-download-uri", map[string]any{"name": "SurviveTest", "version": "1"})["artifact_uri"])
		if files := c.downloadTree(uri); files["python_model.pkl"] != "weights-survive" {
			t.Errorf("after deleting the run: %v", files)
		}
		if rep := c.regOK("", "model-versions/verify", map[string]any{"name": "SurviveTest", "version": "1"}); rep["ok"] != true {
			t.Errorf("verify after deleting the run: %v", rep)
		}
		// The run's artifacts are gone, so registering from them now fails.
		c.regFails("", "model-versions/create", map[string]any{"name": "SurviveTest", "source": src}, 400, "INVALID_PARAMETER_VALUE", "No artifacts exist there")
	})

	t.Run("registry_storage_is_read_only", func(t *testing.T) {
		c := mlflowOn(s, t)
		runID, src := c.logModel(exp, "weights-ro")
		c.createModel("ReadOnlyTest")
		uri := mfStr(c.createVersion("ReadOnlyTest", src, runID)["source"])
		_ = uri
		key := mfArtifactPath(t, mfStr(c.regOK("", "model-versions/get-download-uri", map[string]any{"name": "ReadOnlyTest", "version": "1"})["artifact_uri"]))
		for _, r := range []struct{ method, path string }{
			{"PUT", "/api/2.0/mlflow-artifacts/artifacts/" + key + "/python_model.pkl"},
			{"PUT", "/ajax-api/2.0/mlflow-artifacts/artifacts/" + key + "/new.py"},
			{"DELETE", "/api/2.0/mlflow-artifacts/artifacts/" + key + "/python_model.pkl"},
			{"DELETE", "/api/2.0/mlflow-artifacts/artifacts/" + key},
			{"DELETE", "/api/2.0/mlflow-artifacts/artifacts/registry"},
			{"POST", "/api/2.0/mlflow-artifacts/mpu/create/" + key + "/big.bin"},
		} {
			status, _, body := mfRaw(t, r.method, s.URL+r.path, strings.NewReader(`{"path":"x","num_parts":1}`), "Content-Type", "application/json")
			if status != 403 || !strings.Contains(string(body), "PERMISSION_DENIED") {
				t.Errorf("%s %s: %d %s, want 403 PERMISSION_DENIED", r.method, r.path, status, body)
			}
		}
		if files := c.downloadTree("mlflow-artifacts:/" + key); files["python_model.pkl"] != "weights-ro" || len(files) != 3 {
			t.Errorf("files after refused writes: %v", files)
		}
		// Experiments cannot put their runs' artifacts into registry storage.
		c.fails("experiments/create", map[string]any{"name": "sneaky", "artifact_location": "mlflow-artifacts:/registry/1"}, 400, "INVALID_PARAMETER_VALUE", "reserved")
	})

	t.Run("tampered_files_are_detected_and_refused", func(t *testing.T) {
		c := mlflowOn(s, t)
		runID, src := c.logModel(exp, "weights-good")
		c.createModel("TamperTest")
		c.createVersion("TamperTest", src, runID)
		key := mfArtifactPath(t, mfStr(c.regOK("", "model-versions/get-download-uri", map[string]any{"name": "TamperTest", "version": "1"})["artifact_uri"]))
		env := []string{"SLIPWAY_URL=" + s.URL}
		if out, errOut, code := Cmd(t, env, "models", "verify", "TamperTest/1"); code != 0 || !strings.Contains(out, "ok:") {
			t.Fatalf("verify before tampering: %d %s %s", code, out, errOut)
		}
		onDisk := filepath.Join(s.DataDir, "artifacts", filepath.FromSlash(key))
		if err := os.WriteFile(filepath.Join(onDisk, "python_model.pkl"), []byte("weights-EVIL"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(onDisk, "evil.py"), []byte("import os"), 0o644); err != nil {
			t.Fatal(err)
		}
		status, _, body := c.download(key + "/python_model.pkl")
		if status < 400 || status > 499 || strings.Contains(body, "EVIL") || !strings.Contains(body, "does not match") {
			t.Errorf("download of a tampered file: %d %s", status, body)
		}
		if status, _, body := c.download(key + "/evil.py"); status < 400 || strings.Contains(body, "import os") {
			t.Errorf("download of an added file: %d %s", status, body)
		}
		if status, _, body := c.download(key + "/MLmodel"); status != 200 || !strings.Contains(body, "python_function") {
			t.Errorf("an intact file of a tampered version: %d %s", status, body)
		}
		rep := c.regOK("", "model-versions/verify", map[string]any{"name": "TamperTest", "version": "1"})
		if rep["ok"] != false || len(mfList(rep["changed"])) != 1 || mfStr(mfList(rep["changed"])[0]["path"]) != "python_model.pkl" {
			t.Errorf("verify report %v", rep)
		}
		out, errOut, code := Cmd(t, env, "models", "verify", "TamperTest/1")
		if code == 0 || !strings.Contains(out, "changed     python_model.pkl") || !strings.Contains(out, "unexpected  evil.py") || !strings.Contains(errOut, "does not match its manifest") {
			t.Errorf("slipway models verify: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
		}
		// A tampered version cannot seed another.
		c.regFails("", "model-versions/create", map[string]any{"name": "TamperTest", "source": "models:/TamperTest/1"}, 400, "INVALID_STATE", "no longer matches its manifest")
	})

	t.Run("cli_models", func(t *testing.T) {
		c := mlflowOn(s, t)
		runID, src := c.logModel(exp, "w")
		c.createModel("cli/churn", "tags", []map[string]any{{"key": "team", "value": "risk"}})
		c.createVersion("cli/churn", src, runID)
		c.createVersion("cli/churn", src, runID)
		c.regOK("", "registered-models/alias", map[string]any{"name": "cli/churn", "alias": "champion", "version": "2"})
		env := []string{"SLIPWAY_URL=" + s.URL}
		out, errOut, code := Cmd(t, env, "models", "list", "--filter", "name LIKE 'cli/%'")
		if code != 0 || !strings.Contains(out, "cli/churn") || !strings.Contains(out, "champion=2") || !strings.Contains(out, "team=risk") {
			t.Errorf("models list: %d %s %s", code, out, errOut)
		}
		out, errOut, code = Cmd(t, env, "models", "show", "cli/churn")
		if code != 0 || !strings.Contains(out, "Latest versions:") || !strings.Contains(out, "champion") {
			t.Errorf("models show: %d %s %s", code, out, errOut)
		}
		out, errOut, code = Cmd(t, env, "models", "versions", "cli/churn")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if code != 0 || len(lines) != 3 || !strings.HasPrefix(lines[1], "2 ") {
			t.Errorf("models versions: %d %q %s", code, out, errOut)
		}
		if out, errOut, code := Cmd(t, env, "models", "verify", "cli/churn@champion"); code != 0 || !strings.Contains(out, "version 2") {
			t.Errorf("verify by alias: %d %s %s", code, out, errOut)
		}
		if _, errOut, code := Cmd(t, env, "models", "show", "nope"); code != 2 || !strings.Contains(errOut, "not found") {
			t.Errorf("show missing: %d %s", code, errOut)
		}
		if _, errOut, code := Cmd(t, env, "models", "verify", "cli/churn"); code != 2 || !strings.Contains(errOut, "NAME/VERSION") {
			t.Errorf("verify without version: %d %s", code, errOut)
		}
	})
}

// TestRegistrySecurity replays the path-traversal classes of MLflow's CVE
// history (see mlflow_security_test.go) against model-versions/create
// sources and against the registry's download routes, with a canary file
// next to the data directory where the paths would land.
func TestRegistrySecurity(t *testing.T) {
	s := Start(t)
	c := mlflowOn(s, t)
	canaryDir := t.TempDir()
	secret := "SLIPWAY-REGISTRY-CANARY-" + filepath.Base(canaryDir)
	canary := filepath.Join(canaryDir, "canary.txt")
	if err := os.WriteFile(canary, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	exp := c.createExperiment("registry-security")
	runID, src := c.logModel(exp, "weights")
	c.createModel("sec")
	c.createVersion("sec", src, runID)
	key := mfArtifactPath(t, mfStr(c.regOK("", "model-versions/get-download-uri", map[string]any{"name": "sec", "version": "1"})["artifact_uri"]))
	run := c.getRun(runID)
	runRoot := mfArtifactPath(t, mfStr(mfDig(run, "info.artifact_uri")))
	artRoot := filepath.Join(s.DataDir, "artifacts")
	up := func(from string) int {
		rel, err := filepath.Rel(from, filepath.Dir(canaryDir))
		if err != nil {
			t.Fatal(err)
		}
		return len(strings.Split(filepath.ToSlash(rel), "/"))
	}
	cName := filepath.Base(canaryDir)
	tempRoot := filepath.Dir(canaryDir)
	before := dirNames(t, tempRoot)

	check := func(t *testing.T, what string, status int, body []byte) {
		t.Helper()
		if strings.Contains(string(body), secret) {
			t.Errorf("SECURITY: %s: the answer reveals the canary: %.300s", what, body)
		}
		if b, err := os.ReadFile(canary); err != nil || string(b) != secret {
			t.Fatalf("SECURITY: %s: the canary was changed or removed", what)
		}
		if got := dirNames(t, tempRoot); !reflect.DeepEqual(got, before) {
			t.Fatalf("SECURITY: %s: the directory above the data dir changed: %v", what, got)
		}
		if status < 400 || status > 499 || !strings.Contains(string(body), `"error_code"`) {
			t.Errorf("%s: got %d %.200s, want a 4xx in MLflow's error shape", what, status, body)
		}
	}
	versionsBefore := len(mfList(c.regOK("", "model-versions/search", map[string]any{"filter": "name = 'sec'"})["model_versions"]))

	for _, a := range securityAttacks {
		if a.build == nil {
			continue
		}
		t.Run(a.name, func(t *testing.T) {
			t.Logf("%s", a.cves)
			proxyLogical, _ := a.build(up(artRoot), cName, canaryDir)
			runLogical, _ := a.build(up(filepath.Join(artRoot, filepath.FromSlash(runRoot))), cName, canaryDir)
			regLogical, regURL := a.build(up(filepath.Join(artRoot, filepath.FromSlash(key))), cName, canaryDir)
			sources := []string{
				"mlflow-artifacts:/" + proxyLogical,
				"mlflow-artifacts:" + proxyLogical,
				"runs:/" + runID + "/" + runLogical,
				"models:/sec/1/" + runLogical,
				proxyLogical,
			}
			if a.locations != nil {
				sources = append(sources, a.locations(cName, canaryDir)...)
			}
			for _, source := range sources {
				for _, withRun := range []bool{false, true} {
					msg := map[string]any{"name": "sec", "source": source}
					if withRun {
						msg["run_id"] = runID
					}
					status, body := s.Do("POST", "/api/2.0/mlflow/model-versions/create", msg)
					check(t, "model-versions/create source="+source, status, body)
				}
			}
			downloads := []string{
				"/api/2.0/mlflow-artifacts/artifacts/" + key + "/" + regURL,
				"/ajax-api/2.0/mlflow-artifacts/artifacts/" + key + "/" + regURL,
				"/api/2.0/mlflow/model-versions/get-artifact?" + url.Values{"name": {"sec"}, "version": {"1"}, "path": {regLogical}}.Encode(),
				"/ajax-api/2.0/mlflow/model-versions/get-artifact?" + url.Values{"name": {"sec"}, "version": {"1"}, "path": {regLogical}}.Encode(),
				"/model-versions/get-artifact?" + url.Values{"name": {"sec"}, "version": {"1"}, "path": {regLogical}}.Encode(),
			}
			for _, d := range downloads {
				status, _, body := mfRaw(t, "GET", s.URL+d, nil)
				check(t, "GET "+d, status, body)
			}
		})
	}
	after := mfList(c.regOK("", "model-versions/search", map[string]any{"filter": "name = 'sec'"})["model_versions"])
	if len(after) != versionsBefore {
		var got []string
		for _, v := range after {
			got = append(got, mfStr(v["source"]))
		}
		sort.Strings(got)
		t.Errorf("SECURITY: refused sources created versions: %v", got)
	}
}
