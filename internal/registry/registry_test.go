package registry_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipwayml/slipway/internal/blob"
	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/registry"
	"github.com/slipwayml/slipway/internal/store"
	"github.com/slipwayml/slipway/internal/store/storetest"
	"github.com/slipwayml/slipway/internal/tracking"
)

type fixture struct {
	t       *testing.T
	ctx     context.Context
	reg     *registry.Service
	tr      *tracking.Service
	blobs   *blob.Store
	blobDir string
	clock   int64
	clockMu sync.Mutex
	expID   string
}

func newFixture(t *testing.T, db *store.DB) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	blobs, err := blob.Open(ctx, dir, blob.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { blobs.Close() })
	tr, err := tracking.New(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, ctx: ctx, tr: tr, blobs: blobs, blobDir: dir, clock: 1_700_000_000_000}
	f.reg = registry.New(db, blobs, tr)
	f.reg.Now = f.now
	f.expID = tracking.DefaultExperimentID
	return f
}

// now is a clock that ticks a millisecond per call, so update times order.
func (f *fixture) now() time.Time {
	f.clockMu.Lock()
	defer f.clockMu.Unlock()
	f.clock++
	return time.UnixMilli(f.clock)
}

// run creates a run with files under its artifact root and returns its id.
func (f *fixture) run(files map[string]string) (string, string) {
	f.t.Helper()
	run, err := f.tr.CreateRun(f.ctx, tracking.CreateRunRequest{ExperimentID: f.expID})
	if err != nil {
		f.t.Fatal(err)
	}
	root, err := blob.ResolveLocation(run.Info.ArtifactURI)
	if err != nil {
		f.t.Fatal(err)
	}
	for p, c := range files {
		if _, err := f.blobs.Put(f.ctx, root+"/"+p, strings.NewReader(c)); err != nil {
			f.t.Fatal(err)
		}
	}
	return run.Info.RunID, root
}

func (f *fixture) model(name string) {
	f.t.Helper()
	if _, err := f.reg.CreateRegisteredModel(f.ctx, name, nil, nil); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) version(name, source, runID string) registry.ModelVersion {
	f.t.Helper()
	v, err := f.reg.CreateModelVersion(f.ctx, registry.CreateModelVersionRequest{Name: name, Source: source, RunID: runID})
	if err != nil {
		f.t.Fatalf("create version of %s from %s: %v", name, source, err)
	}
	return v
}

func wantCode(t *testing.T, what string, err error, code errs.Code, substr string) {
	t.Helper()
	if !errs.Is(err, code) {
		t.Fatalf("%s: got %v (%v), want %v", what, errs.CodeOf(err), err, code)
	}
	if substr != "" && !strings.Contains(errs.Message(err), substr) {
		t.Fatalf("%s: message %q does not contain %q", what, errs.Message(err), substr)
	}
}

var modelFiles = map[string]string{
	"model/MLmodel":            "flavors:\n  python_function: {}\n",
	"model/model.pkl":          "weights-v1",
	"model/sub/conda.yaml":     "name: env\n",
	"model/sub/deeper/a b.txt": "space in name",
}

func TestModelLifecycle(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := f.ctx
		desc := "churn model"
		m, err := f.reg.CreateRegisteredModel(ctx, "churn", []registry.Tag{{Key: "team", Value: "risk"}}, &desc)
		if err != nil {
			t.Fatal(err)
		}
		if m.Name != "churn" || *m.Description != desc || len(m.Tags) != 1 || m.CreationTime != m.LastUpdatedTime {
			t.Fatalf("created %+v", m)
		}
		_, err = f.reg.CreateRegisteredModel(ctx, "churn", nil, nil)
		wantCode(t, "duplicate", err, errs.AlreadyExists, "Registered Model (name=churn) already exists.")
		_, err = f.reg.CreateRegisteredModel(ctx, "", nil, nil)
		wantCode(t, "empty name", err, errs.InvalidArgument, "'name'")
		_, err = f.reg.CreateRegisteredModel(ctx, "bad-tag", []registry.Tag{{Key: "../x", Value: "v"}}, nil)
		wantCode(t, "bad tag", err, errs.InvalidArgument, "tags[0].key")
		if _, err := f.reg.GetRegisteredModel(ctx, "bad-tag"); !errs.Is(err, errs.NotFound) {
			t.Fatalf("a refused create left a model behind: %v", err)
		}

		runID, _ := f.run(modelFiles)
		v1 := f.version("churn", "runs:/"+runID+"/model", "")
		if v1.Version != 1 || v1.Status != registry.StatusReady || v1.CurrentStage != registry.StageNone || v1.Digest == "" {
			t.Fatalf("v1 %+v", v1)
		}
		v2 := f.version("churn", "runs:/"+runID+"/model", runID)
		if v2.Version != 2 || *v2.RunID != runID {
			t.Fatalf("v2 %+v", v2)
		}
		if v1.Digest != v2.Digest {
			t.Fatalf("same files, different digests: %s %s", v1.Digest, v2.Digest)
		}

		// Stages and latest versions.
		if _, err := f.reg.TransitionStage(ctx, "churn", 1, "production", false); err != nil {
			t.Fatal(err)
		}
		v, err := f.reg.TransitionStage(ctx, "churn", 2, "Production", true)
		if err != nil || v.CurrentStage != registry.StageProduction {
			t.Fatalf("transition: %+v %v", v, err)
		}
		old, _ := f.reg.GetModelVersion(ctx, "churn", 1)
		if old.CurrentStage != registry.StageArchived {
			t.Fatalf("archive_existing_versions left v1 in %s", old.CurrentStage)
		}
		_, err = f.reg.TransitionStage(ctx, "churn", 2, "Archived", true)
		wantCode(t, "archive into Archived", err, errs.InvalidArgument, "not an Active stage")
		_, err = f.reg.TransitionStage(ctx, "churn", 2, "Prod", false)
		wantCode(t, "bad stage", err, errs.InvalidArgument, "Invalid Model Version stage: Prod")
		latest, err := f.reg.GetLatestVersions(ctx, "churn", nil)
		if err != nil || len(latest) != 2 {
			t.Fatalf("latest %+v %v", latest, err)
		}
		prod, _ := f.reg.GetLatestVersions(ctx, "churn", []string{"production"})
		if len(prod) != 1 || prod[0].Version != 2 {
			t.Fatalf("latest production %+v", prod)
		}

		// Aliases.
		if err := f.reg.SetAlias(ctx, "churn", "champion", 2); err != nil {
			t.Fatal(err)
		}
		wantCode(t, "alias to missing version", f.reg.SetAlias(ctx, "churn", "x", 9), errs.NotFound, "version=9")
		wantCode(t, "reserved alias", f.reg.SetAlias(ctx, "churn", "latest", 1), errs.InvalidArgument, "reserved")
		wantCode(t, "version-shaped alias", f.reg.SetAlias(ctx, "churn", "v3", 1), errs.InvalidArgument, "reserved")
		byAlias, err := f.reg.GetVersionByAlias(ctx, "churn", "champion")
		if err != nil || byAlias.Version != 2 || !reflect.DeepEqual(byAlias.Aliases, []string{"champion"}) {
			t.Fatalf("by alias %+v %v", byAlias, err)
		}
		_, err = f.reg.GetVersionByAlias(ctx, "churn", "nope")
		wantCode(t, "unknown alias", err, errs.InvalidArgument, "Registered model alias nope not found.")

		// Tags.
		if err := f.reg.SetModelVersionTag(ctx, "churn", 2, registry.Tag{Key: "validation", Value: "passed"}); err != nil {
			t.Fatal(err)
		}
		if err := f.reg.DeleteRegisteredModelTag(ctx, "churn", "team"); err != nil {
			t.Fatal(err)
		}

		// Rename keeps everything, files included.
		m, err = f.reg.RenameRegisteredModel(ctx, "churn", "churn-v2")
		if err != nil || m.Name != "churn-v2" || len(m.Aliases) != 1 || len(m.Tags) != 0 {
			t.Fatalf("rename %+v %v", m, err)
		}
		rep, err := f.reg.Verify(ctx, "churn-v2", 2)
		if err != nil || !rep.OK() || rep.Files != 4 {
			t.Fatalf("verify after rename: %+v %v", rep, err)
		}
		uri, _ := f.reg.DownloadURI(ctx, "churn-v2", 2)
		key, _ := blob.ResolveLocation(uri)
		body, _, err := f.reg.OpenVerified(ctx, key+"/model.pkl")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(body)
		body.Close()
		if string(b) != "weights-v1" {
			t.Fatalf("served %q", b)
		}
		f.model("other")
		_, err = f.reg.RenameRegisteredModel(ctx, "churn-v2", "other")
		wantCode(t, "rename onto existing", err, errs.AlreadyExists, "Registered Model (name=other) already exists.")

		// Delete a version: its number is not reused, its files go.
		if err := f.reg.DeleteModelVersion(ctx, "churn-v2", 2); err != nil {
			t.Fatal(err)
		}
		_, err = f.reg.GetModelVersion(ctx, "churn-v2", 2)
		wantCode(t, "deleted version", err, errs.NotFound, "Model Version (name=churn-v2, version=2) not found")
		if _, err := f.blobs.Stat(ctx, key); !errs.Is(err, errs.NotFound) {
			t.Fatalf("deleted version's files remain: %v", err)
		}
		v3 := f.version("churn-v2", "runs:/"+runID+"/model", "")
		if v3.Version != 3 {
			t.Fatalf("version after a delete is %d, want 3", v3.Version)
		}
		m, _ = f.reg.GetRegisteredModel(ctx, "churn-v2")
		if len(m.Aliases) != 0 {
			t.Fatalf("alias of a deleted version remains: %+v", m.Aliases)
		}

		if err := f.reg.DeleteRegisteredModel(ctx, "churn-v2"); err != nil {
			t.Fatal(err)
		}
		wantCode(t, "delete twice", f.reg.DeleteRegisteredModel(ctx, "churn-v2"), errs.NotFound, "Registered Model with name=churn-v2 not found")
		entries, _ := f.blobs.List(ctx, registry.StorageDir)
		for _, e := range entries {
			if e.Key == "registry/1" {
				t.Fatalf("a deleted model's files remain: %v", entries)
			}
		}
	})
}

func TestSourcesAndImmutability(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := f.ctx
		f.model("m")
		runID, root := f.run(modelFiles)
		otherRun, _ := f.run(map[string]string{"x.txt": "x"})

		// Every accepted form.
		v1 := f.version("m", "runs:/"+runID+"/model", "")
		v2 := f.version("m", "mlflow-artifacts:/"+root+"/model", runID)
		v3 := f.version("m", "models:/m/1", "")
		if err := f.reg.SetAlias(ctx, "m", "best", 3); err != nil {
			t.Fatal(err)
		}
		v4 := f.version("m", "models:/m@best", "")
		single := f.version("m", "runs:/"+runID+"/model/model.pkl", "")
		for _, v := range []registry.ModelVersion{v2, v3, v4} {
			if v.Digest != v1.Digest {
				t.Fatalf("v%d digest %s, want %s", v.Version, v.Digest, v1.Digest)
			}
		}
		if !strings.HasSuffix(single.StorageLocation, "/files/model.pkl") {
			t.Fatalf("single-file location %s", single.StorageLocation)
		}

		bad := []struct{ source, runID, want string }{
			{"file:///etc/passwd", "", "Invalid model version source"},
			{"/etc/passwd", "", "Invalid model version source"},
			{"s3://bucket/model", "", "Invalid model version source"},
			{"http://127.0.0.1:5000/api/2.0/mlflow-artifacts/artifacts/0", "", "Invalid model version source"},
			{"model", "", "Invalid model version source"},
			{"mlflow-artifacts:/../../etc", "", "Invalid model version source"},
			{"mlflow-artifacts:/0/%2e%2e/%2e%2e/etc", "", "Invalid model version source"},
			{"mlflow-artifacts:/0/%252e%252e/etc", "", "Invalid model version source"},
			{"mlflow-artifacts://host/0/x", "", "Invalid model version source"},
			{"mlflow-artifacts:/0/x?/../../etc", "", "Invalid model version source"},
			{"mlflow-artifacts:/0/x#/../../etc", "", "Invalid model version source"},
			{"mlflow-artifacts:/0/x;/../../etc", "", "Invalid model version source"},
			{"mlflow-artifacts:/registry/1/1/files", "", "Registry storage cannot be a source"},
			{"runs:/" + runID + "/../../../etc", "", "Invalid model version source"},
			{"runs:/" + runID + "/model/%2e%2e", "", "Invalid model version source"},
			{"runs://" + runID + "/model", "", "Invalid model version source"},
			{"runs:/" + runID + "/model", otherRun, "but run_id is"},
			{"mlflow-artifacts:/" + root + "/model", otherRun, "not inside the artifact directory"},
			{"runs:/" + runID + "/nothing-here", "", "No artifacts exist there"},
			{"models:/m/99", "", "not found"},
			{"models:/m@nope", "", "not found"},
			{"models://m/1", "", "Invalid model version source"},
		}
		for _, c := range bad {
			_, err := f.reg.CreateModelVersion(ctx, registry.CreateModelVersionRequest{Name: "m", Source: c.source, RunID: c.runID})
			if err == nil || errs.CodeOf(err) == errs.Internal || !strings.Contains(errs.Message(err), c.want) {
				t.Errorf("source %q run_id %q: got %v (%v), want a refusal containing %q", c.source, c.runID, errs.CodeOf(err), err, c.want)
			}
		}
		latest, _, _ := f.reg.SearchModelVersions(ctx, registry.SearchModelVersionsRequest{Filter: "name = 'm'"})
		if len(latest) != 5 {
			t.Fatalf("refused sources created versions: %d versions", len(latest))
		}

		// Deleting the run and its files does not touch the versions.
		if err := f.tr.DeleteRun(ctx, runID); err != nil {
			t.Fatal(err)
		}
		if err := f.blobs.Delete(ctx, root); err != nil {
			t.Fatal(err)
		}
		for n := int64(1); n <= 5; n++ {
			rep, err := f.reg.Verify(ctx, "m", n)
			if err != nil || !rep.OK() {
				t.Fatalf("v%d after deleting its run: %+v %v", n, rep, err)
			}
		}

		// Tampering: change, remove and add files on disk.
		vdir := filepath.Join(f.blobDir, "registry", "1", "1")
		os.WriteFile(filepath.Join(vdir, "files", "model.pkl"), []byte("weights-EVIL"), 0o644)
		os.Remove(filepath.Join(vdir, "files", "MLmodel"))
		os.WriteFile(filepath.Join(vdir, "files", "backdoor.py"), []byte("import os"), 0o644)
		rep, err := f.reg.Verify(ctx, "m", 1)
		if err != nil {
			t.Fatal(err)
		}
		if rep.OK() || len(rep.Changed) != 1 || rep.Changed[0].Path != "model.pkl" ||
			!reflect.DeepEqual(rep.Missing, []string{"MLmodel"}) || !reflect.DeepEqual(rep.Extra, []string{"backdoor.py"}) {
			t.Fatalf("verify after tampering: %+v", rep)
		}
		for _, p := range []string{"model.pkl", "MLmodel", "backdoor.py"} {
			_, _, err := f.reg.OpenVerified(ctx, "registry/1/1/files/"+p)
			wantCode(t, "open tampered "+p, err, errs.FailedPrecondition, "does not match the version's manifest")
		}
		// A same-size change is caught by the digest.
		os.WriteFile(filepath.Join(vdir, "files", "sub", "conda.yaml"), []byte("name: EVL\n"), 0o644)
		_, _, err = f.reg.OpenVerified(ctx, "registry/1/1/files/sub/conda.yaml")
		wantCode(t, "same-size change", err, errs.FailedPrecondition, "SHA-256")
		// A tampered version cannot be copied into a new one.
		_, err = f.reg.CreateModelVersion(ctx, registry.CreateModelVersionRequest{Name: "m", Source: "models:/m/1"})
		wantCode(t, "copy tampered", err, errs.FailedPrecondition, "no longer matches its manifest")
		// MANIFEST.json is served from the database even if edited on disk.
		os.WriteFile(filepath.Join(vdir, registry.ManifestName), []byte("{}"), 0o644)
		r, _, err := f.reg.OpenVerified(ctx, "registry/1/1/MANIFEST.json")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r)
		if !strings.Contains(string(b), "model.pkl") {
			t.Fatalf("manifest served %q", b)
		}
		if rep, _ := f.reg.Verify(ctx, "m", 1); rep.ManifestFileIntact {
			t.Fatalf("an edited MANIFEST.json is reported intact")
		}
		// Others are untouched.
		if rep, _ := f.reg.Verify(ctx, "m", 2); !rep.OK() {
			t.Fatalf("v2 affected by v1's tampering: %+v", rep)
		}
	})
}

func TestSearch(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := f.ctx
		runID, _ := f.run(map[string]string{"model/m.bin": "1"})
		names := []string{"alpha", "beta", "Beta-2", "gamma", "delta"}
		for i, n := range names {
			tags := []registry.Tag{{Key: "team", Value: []string{"risk", "growth"}[i%2]}}
			if i < 2 {
				tags = append(tags, registry.Tag{Key: "tier", Value: "gold"})
			}
			if _, err := f.reg.CreateRegisteredModel(ctx, n, tags, nil); err != nil {
				t.Fatal(err)
			}
		}
		for range 3 {
			f.version("beta", "runs:/"+runID+"/model", runID)
		}
		f.version("alpha", "runs:/"+runID+"/model", "")

		got := func(filter string, orderBy ...string) []string {
			t.Helper()
			var out []string
			tok := ""
			for {
				ms, next, err := f.reg.SearchRegisteredModels(ctx, registry.SearchRegisteredModelsRequest{Filter: filter, OrderBy: orderBy, MaxResults: 2, PageToken: tok})
				if err != nil {
					t.Fatalf("search %q: %v", filter, err)
				}
				for _, m := range ms {
					out = append(out, m.Name)
				}
				if next == "" {
					return out
				}
				tok = next
			}
		}
		cases := []struct {
			filter  string
			orderBy []string
			want    []string
		}{
			{"", nil, []string{"Beta-2", "alpha", "beta", "delta", "gamma"}},
			{"name LIKE 'b%'", nil, []string{"beta"}},
			{"name ILIKE 'b%'", nil, []string{"Beta-2", "beta"}},
			{"name != 'alpha'", nil, []string{"Beta-2", "beta", "delta", "gamma"}},
			{"tags.team = 'risk' AND tags.tier = 'gold'", nil, []string{"alpha"}},
			{"tags.team = 'growth' and tags.`tier` LIKE 'g%'", nil, []string{"beta"}},
			{"", []string{"name DESC"}, []string{"gamma", "delta", "beta", "alpha", "Beta-2"}},
			{"", []string{"last_updated_timestamp DESC"}, []string{"alpha", "beta", "delta", "gamma", "Beta-2"}},
			{"", []string{"timestamp"}, []string{"Beta-2", "gamma", "delta", "beta", "alpha"}},
		}
		for _, c := range cases {
			if g := got(c.filter, c.orderBy...); !reflect.DeepEqual(g, c.want) {
				t.Errorf("filter %q order %v: got %v, want %v", c.filter, c.orderBy, g, c.want)
			}
		}
		for _, c := range []struct{ filter, want string }{
			{"description = 'x'", "Invalid attribute key 'description'"},
			{"name = alpha", "not quoted"},
			{"name > 'a'", "Invalid comparator"},
			{"tags.team IN ('a')", "Only the 'run_id' attribute"},
			{"name = 'a' OR name = 'b'", "Invalid clause"},
			{"params.x = 'a'", "Invalid entity type"},
		} {
			_, _, err := f.reg.SearchRegisteredModels(ctx, registry.SearchRegisteredModelsRequest{Filter: c.filter})
			wantCode(t, c.filter, err, errs.InvalidArgument, c.want)
		}
		_, _, err := f.reg.SearchRegisteredModels(ctx, registry.SearchRegisteredModelsRequest{MaxResults: 1001})
		wantCode(t, "max_results", err, errs.InvalidArgument, "at most 1000")
		_, _, err = f.reg.SearchRegisteredModels(ctx, registry.SearchRegisteredModelsRequest{OrderBy: []string{"name", "name DESC"}})
		wantCode(t, "duplicate order", err, errs.InvalidArgument, "duplicate")
		_, _, err = f.reg.SearchRegisteredModels(ctx, registry.SearchRegisteredModelsRequest{OrderBy: []string{"creation_timestamp"}})
		wantCode(t, "bad order key", err, errs.InvalidArgument, "Invalid order by key")

		vs, _, err := f.reg.SearchModelVersions(ctx, registry.SearchModelVersionsRequest{Filter: "name = 'beta' AND version_number >= 2"})
		if err != nil || len(vs) != 2 || vs[0].Version != 3 || vs[1].Version != 2 {
			t.Fatalf("versions %+v %v", vs, err)
		}
		vs, _, _ = f.reg.SearchModelVersions(ctx, registry.SearchModelVersionsRequest{Filter: "run_id IN ('" + runID + "', 'x')", OrderBy: []string{"version_number ASC", "name"}})
		if len(vs) != 3 || vs[0].Version != 1 || vs[0].Name != "beta" {
			var g []string
			for _, v := range vs {
				g = append(g, v.Name)
			}
			t.Fatalf("run_id IN: %v", g)
		}
		vs, _, _ = f.reg.SearchModelVersions(ctx, registry.SearchModelVersionsRequest{Filter: "source_path LIKE 'runs:/%'"})
		if len(vs) != 4 {
			t.Fatalf("source_path LIKE: %d", len(vs))
		}
		_, _, err = f.reg.SearchModelVersions(ctx, registry.SearchModelVersionsRequest{Filter: "version_number = '1'"})
		wantCode(t, "string version", err, errs.InvalidArgument, "numeric")
	})
}

func TestConcurrentVersions(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.model("m")
		runID, _ := f.run(map[string]string{"model/a": "a"})
		var wg sync.WaitGroup
		errc := make(chan error, 8)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := f.reg.CreateModelVersion(f.ctx, registry.CreateModelVersionRequest{Name: "m", Source: "runs:/" + runID + "/model"})
				errc <- err
			}()
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			if err != nil {
				t.Fatal(err)
			}
		}
		vs, _, _ := f.reg.SearchModelVersions(f.ctx, registry.SearchModelVersionsRequest{OrderBy: []string{"version_number"}})
		if len(vs) != 8 || vs[7].Version != 8 {
			t.Fatalf("%d versions", len(vs))
		}
		for _, v := range vs {
			if rep, err := f.reg.Verify(f.ctx, "m", v.Version); err != nil || !rep.OK() {
				t.Fatalf("v%d: %+v %v", v.Version, rep, err)
			}
		}
	})
}
