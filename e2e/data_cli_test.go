package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDataCLI drives `slipway data add/list/show/get/diff` against a real
// server, as a user would.
func TestDataCLI(t *testing.T) {
	s := Start(t)
	env := []string{"SLIPWAY_URL=" + s.URL, "SLIPWAY_CACHE_DIR=" + t.TempDir()}
	run := func(wantCode int, args ...string) string {
		t.Helper()
		out, errOut, code := Cmd(t, env, args...)
		if code != wantCode {
			t.Fatalf("slipway %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, wantCode, out, errOut)
		}
		return out + errOut
	}
	src := t.TempDir()
	write := func(rel, content string) {
		p := filepath.Join(src, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		old := time.Now().Add(-time.Hour)
		os.Chtimes(p, old, old)
	}
	var csv strings.Builder
	csv.WriteString("id,price,color\n")
	for i := range 500 {
		fmt.Fprintf(&csv, "%d,%d.5,%s\n", i, i%50, []string{"red", "green", "blue"}[i%3])
	}
	write("train.csv", csv.String())
	write("docs/readme.md", "# data\n")
	write("docs/copy.md", "# data\n")

	out := run(0, "data", "add", "shop", src, "-m", "first cut")
	if !strings.Contains(out, "added shop@v1: 3 files") || !strings.Contains(out, "uploaded 2 of 2 objects") {
		t.Fatalf("first add:\n%s", out)
	}
	out = run(0, "data", "add", "shop", src)
	if !strings.Contains(out, "shop@v1 already has this content") {
		t.Fatalf("re-add:\n%s", out)
	}
	out = run(0, "data", "list")
	if !strings.Contains(out, "shop") || !strings.Contains(out, "v1") {
		t.Fatalf("list:\n%s", out)
	}
	out = run(0, "data", "show", "shop@v1")
	for _, want := range []string{"message:  first cut", "train.csv (csv, 500 rows, 3 columns)", "price", "float", "color", "string", "red (167)"} {
		if !strings.Contains(out, want) {
			t.Fatalf("show: missing %q in\n%s", want, out)
		}
	}

	// A second version: one file changed, one added.
	csv.Reset()
	csv.WriteString("id,price,color,size\n")
	for i := range 600 {
		fmt.Fprintf(&csv, "%d,%d.5,%s,%d\n", i, 10+i%50, []string{"red", "green", "pink"}[i%3], i%4)
	}
	write("train.csv", csv.String())
	write("extra.txt", "more")
	out = run(0, "data", "add", "shop", src)
	if !strings.Contains(out, "added shop@v2: 4 files") || !strings.Contains(out, "uploaded 2 of 3 objects") {
		t.Fatalf("second add:\n%s", out)
	}
	out = run(0, "data", "diff", "shop@v1", "shop@v2")
	for _, want := range []string{"1 added, 0 removed, 1 changed, 2 unchanged", "+ extra.txt", "~ train.csv", "rows 500 -> 600", "+ column size", "price", "+pink -blue"} {
		if !strings.Contains(out, want) {
			t.Fatalf("diff: missing %q in\n%s", want, out)
		}
	}
	out = run(0, "data", "list", "shop")
	if !strings.Contains(out, "v2") || !strings.Contains(out, "first cut") {
		t.Fatalf("list versions:\n%s", out)
	}

	// get writes version 1 exactly; a second get keeps what is there.
	dest := filepath.Join(t.TempDir(), "out")
	out = run(0, "data", "get", "shop@v1", dest)
	if !strings.Contains(out, "3 files written") {
		t.Fatalf("get:\n%s", out)
	}
	for rel, want := range map[string]string{"docs/readme.md": "# data\n", "docs/copy.md": "# data\n"} {
		got, err := os.ReadFile(filepath.Join(dest, rel))
		if err != nil || string(got) != want {
			t.Fatalf("%s: %q %v", rel, got, err)
		}
	}
	if got, _ := os.ReadFile(filepath.Join(dest, "train.csv")); !strings.HasPrefix(string(got), "id,price,color\n") {
		t.Fatalf("train.csv is not version 1's: %.40q", got)
	}
	out = run(0, "data", "get", "shop@v1", dest)
	if !strings.Contains(out, "0 files written") || !strings.Contains(out, "3 already present") {
		t.Fatalf("second get:\n%s", out)
	}
	// Version 2 differs in train.csv: refused without --force.
	out = run(2, "data", "get", "shop@latest", dest)
	if !strings.Contains(out, "exists with other content") {
		t.Fatalf("conflicting get:\n%s", out)
	}
	run(0, "data", "get", "shop@latest", dest, "--force")

	// Clear errors for bad references.
	if out = run(2, "data", "show", "shop@v9"); !strings.Contains(out, "shop@v9 not found") {
		t.Fatalf("unknown version:\n%s", out)
	}
	if out = run(2, "data", "show", "bad name"); !strings.Contains(out, "name") {
		t.Fatalf("bad name:\n%s", out)
	}
	if out = run(2, "data", "add", "shop", filepath.Join(src, "nope")); !strings.Contains(out, "no such file") {
		t.Fatalf("missing path:\n%s", out)
	}
}

// TestDataObjectsReserved checks that MLflow's artifact proxy cannot
// overwrite or delete content-addressed data objects.
func TestDataObjectsReserved(t *testing.T) {
	s := Start(t)
	for _, c := range []struct{ method, path string }{
		{"PUT", "/api/2.0/mlflow-artifacts/artifacts/objects/sha256/ab/x"},
		{"DELETE", "/api/2.0/mlflow-artifacts/artifacts/objects"},
		{"PUT", "/api/2.0/mlflow-artifacts/artifacts/Objects/sha256/ab/x"},
		{"POST", "/api/2.0/mlflow-artifacts/mpu/create/objects/x"},
	} {
		if status, body := s.Do(c.method, c.path, "x"); status != 403 || !strings.Contains(string(body), "objects/ is written only by Slipway") {
			t.Errorf("%s %s: %d %s; want 403", c.method, c.path, status, body)
		}
	}
	if status, _ := s.Do("PUT", "/api/2.0/mlflow-artifacts/artifacts/0/run/artifacts/objects.txt", "x"); status != 200 {
		t.Errorf("ordinary artifact: %d", status)
	}
}
