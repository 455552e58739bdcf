package registry_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipwayml/slipway/internal/blob"
	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/registry"
	"github.com/slipwayml/slipway/internal/store/storetest"
	"github.com/slipwayml/slipway/internal/tracking"
)

// TestRootSources registers versions from sources written as locations
// inside the artifact root, as a client that writes to the root itself
// names them, and refuses every location outside it. Local always; S3
// when SLIPWAY_TEST_S3_ENDPOINT is set.
func TestRootSources(t *testing.T) {
	t.Run("local", func(t *testing.T) {
		base := t.TempDir()
		root := filepath.Join(base, "artifacts")
		blobs, err := blob.Open(context.Background(), root, blob.Options{})
		if err != nil {
			t.Fatal(err)
		}
		// Outside the root: a look-alike sibling folder, and a link from
		// inside the root to it.
		if err := os.MkdirAll(root+"-evil/model", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(root+"-evil/model/MLmodel", []byte("evil"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(root+"-evil", root+"/linked"); err != nil {
			t.Fatal(err)
		}
		rootSources(t, blobs, func(key string) []string { return []string{root + "/" + key, "file://" + root + "/" + key} }, []string{
			root + "-evil/model",
			root + "/linked/model",
			root + "/../artifacts-evil/model",
			"file://" + root + "/%2e%2e/artifacts-evil/model",
			"file://" + root + "%2f..%2fartifacts-evil/model",
			"s3://bucket/model",
			"/etc/passwd",
			root,
		})
	})
	t.Run("s3", func(t *testing.T) {
		endpoint := os.Getenv("SLIPWAY_TEST_S3_ENDPOINT")
		if endpoint == "" {
			if os.Getenv("CI") == "true" {
				t.Fatal("SLIPWAY_TEST_S3_ENDPOINT is not set; CI must run the S3 tests")
			}
			t.Skip("SLIPWAY_TEST_S3_ENDPOINT is not set; skipping S3")
		}
		var b [6]byte
		rand.Read(b[:])
		bucket := "slipway-test-" + hex.EncodeToString(b[:])
		blobs, err := blob.Open(context.Background(), "s3://"+bucket+"/root", blob.Options{Endpoint: endpoint, CreateBucket: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			blobs.Delete(context.Background(), "0")
			blobs.Delete(context.Background(), registry.StorageDir)
		})
		rootSources(t, blobs, func(key string) []string { return []string{"s3://" + bucket + "/root/" + key} }, []string{
			"s3://" + bucket + "/root-evil/model",
			"s3://other-" + bucket + "/root/0/model",
			"s3://" + bucket + "/root/0/../x",
			"s3://" + bucket + "/root/0/%2e%2e/x",
			"s3://" + bucket + "/root",
			"/root/0/model",
			"file:///root/0/model",
		})
	})
}

// rootSources registers from every accepted spelling abs(key) of a run's
// model folder and checks each refused source.
func rootSources(t *testing.T, blobs *blob.Store, abs func(key string) []string, refused []string) {
	db := storetest.SQLite(t)
	ctx := context.Background()
	t.Cleanup(func() { blobs.Close() })
	tr, err := tracking.New(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, ctx: ctx, tr: tr, blobs: blobs, clock: 1_700_000_000_000, expID: tracking.DefaultExperimentID}
	f.reg = registry.New(db, blobs, tr)
	f.reg.Now = f.now
	f.model("m")
	runID, runRoot := f.run(modelFiles)
	otherRun, _ := f.run(map[string]string{"x.txt": "x"})
	want := f.version("m", "runs:/"+runID+"/model", "")

	for _, src := range abs(runRoot + "/model") {
		for _, run := range []string{"", runID} {
			v := f.version("m", src, run)
			if v.Digest != want.Digest || v.Source != src {
				t.Errorf("source %q run_id %q: digest %s source %q, want %s", src, run, v.Digest, v.Source, want.Digest)
			}
		}
		_, err := f.reg.CreateModelVersion(ctx, registry.CreateModelVersionRequest{Name: "m", Source: src, RunID: otherRun})
		wantCode(t, src+" with another run's run_id", err, errs.InvalidArgument, "not inside the artifact directory of run")
	}
	for _, src := range abs(runRoot + "/model/model.pkl") {
		if v := f.version("m", src, ""); !strings.HasSuffix(v.StorageLocation, "/files/model.pkl") {
			t.Errorf("single file %q stored at %s", src, v.StorageLocation)
		}
	}
	for _, src := range abs("registry/1/1/files") {
		_, err := f.reg.CreateModelVersion(ctx, registry.CreateModelVersionRequest{Name: "m", Source: src})
		wantCode(t, src, err, errs.InvalidArgument, "Registry storage cannot be a source")
	}
	for _, src := range abs(runRoot + "/nothing-here") {
		_, err := f.reg.CreateModelVersion(ctx, registry.CreateModelVersionRequest{Name: "m", Source: src})
		wantCode(t, src, err, errs.InvalidArgument, "No artifacts exist there")
	}
	for _, src := range refused {
		_, err := f.reg.CreateModelVersion(ctx, registry.CreateModelVersionRequest{Name: "m", Source: src})
		wantCode(t, src, err, errs.InvalidArgument, "Invalid model version source")
	}
	vs, _, err := f.reg.SearchModelVersions(ctx, registry.SearchModelVersionsRequest{Filter: "name = 'm'"})
	if n := 1 + 3*len(abs("")); err != nil || len(vs) != n {
		t.Fatalf("%d versions (%v), want %d: a refused source created one", len(vs), err, n)
	}
}
