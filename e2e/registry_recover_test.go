package e2e

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slipwayml/slipway/internal/store"
	"github.com/slipwayml/slipway/internal/store/storetest"
)

// TestAbandonedRegistrationIsFailed: a server killed while copying a new
// version's files leaves the version PENDING_REGISTRATION with part of its
// files. The next server start marks it FAILED_REGISTRATION, says why, and
// removes the files; a registration another server may still be copying
// (touched a moment ago) is left alone.
func TestAbandonedRegistrationIsFailed(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { abandonedRegistration(t) })
	t.Run("postgres", func(t *testing.T) {
		abandonedRegistration(t, "--db", storetest.PostgresDSN(t))
	})
}

func abandonedRegistration(t *testing.T, args ...string) {
	s := Start(t, args...)
	c := mlflowOn(s, t)
	runID, src := c.logModel(c.createExperiment(uniqueName("recover")), "weights-1")
	c.createModel("churn")
	if v := c.createVersion("churn", src, runID); mfStr(v["version"]) != "1" {
		t.Fatalf("first version %v", v)
	}
	s.Kill9()

	// What the killed server leaves when it dies mid-copy (version 2, last
	// touched 10 minutes ago), and what a live server copying right now
	// looks like (version 3).
	ctx := context.Background()
	dsn := filepath.Join(s.DataDir, "slipway.db")
	if len(args) == 2 && args[0] == "--db" {
		dsn = args[1]
	}
	db, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	var id int64
	if err := db.Read.QueryRowContext(ctx, db.Q(`SELECT model_id FROM registered_models WHERE name = ?`), "churn").Scan(&id); err != nil {
		t.Fatal(err)
	}
	partial := func(version int64) string {
		return filepath.Join(s.DataDir, "artifacts", "registry", strconv.FormatInt(id, 10), strconv.FormatInt(version, 10))
	}
	for version, touched := range map[int64]time.Time{2: time.Now().Add(-10 * time.Minute), 3: time.Now()} {
		err := db.Tx(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, db.Q(`INSERT INTO model_versions
				(model_id, version, creation_time, last_updated_time, description, user_id, current_stage, source, run_id, run_link, status, storage_location)
				VALUES (?, ?, ?, ?, '', NULL, 'None', ?, ?, '', 'PENDING_REGISTRATION', '')`), id, version, touched.UnixMilli(), touched.UnixMilli(), src, runID)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(partial(version), "files"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(partial(version), "files", "MLmodel"), []byte("artifact_path: mo"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	s2 := StartIn(t, s.DataDir, args...)
	c2 := mlflowOn(s2, t)
	var v2 map[string]any
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		v2 = c2.getVersion("churn", "2")
		if mfStr(v2["status"]) != "PENDING_REGISTRATION" || time.Now().After(deadline) {
			break
		}
	}
	if mfStr(v2["status"]) != "FAILED_REGISTRATION" || !strings.Contains(mfStr(v2["status_message"]), "Registration did not finish") {
		t.Fatalf("abandoned version after restart: %v\nserver log:\n%s", v2, s2.Logs())
	}
	if _, err := os.Stat(partial(2)); !os.IsNotExist(err) {
		t.Errorf("partial files of the abandoned version remain: %v", err)
	}
	if v3 := c2.getVersion("churn", "3"); mfStr(v3["status"]) != "PENDING_REGISTRATION" {
		t.Errorf("a registration in progress was touched: %v", v3)
	}
	if _, err := os.Stat(filepath.Join(partial(3), "files", "MLmodel")); err != nil {
		t.Errorf("files of the registration in progress: %v", err)
	}
	c2.regFails("", "model-versions/get-download-uri", map[string]any{"name": "churn", "version": "2"}, 400, "INVALID_STATE", "FAILED_REGISTRATION")
	// Numbers are not reused; the failed version is not latest.
	if v := c2.createVersion("churn", src, runID); mfStr(v["version"]) != "4" || mfStr(v["status"]) != "READY" {
		t.Fatalf("next version %v", v)
	}
	rm := mfObj(c2.regOK("", "registered-models/get", map[string]any{"name": "churn"})["registered_model"])
	if lv := mfList(rm["latest_versions"]); len(lv) != 1 || mfStr(lv[0]["version"]) != "4" {
		t.Errorf("latest_versions %v", rm["latest_versions"])
	}
	if !strings.Contains(s2.Logs(), "abandoned model version registration") {
		t.Errorf("the server did not log the recovery:\n%s", s2.Logs())
	}
}

// TestRootSourceOverHTTP: a client that writes to the artifact root itself
// names the model by its place in the root; the server registers it, and
// refuses the same path bent out of the root.
func TestRootSourceOverHTTP(t *testing.T) {
	s := Start(t)
	c := mlflowOn(s, t)
	runID, src := c.logModel(c.createExperiment(uniqueName("root-source")), "weights-1")
	run := c.getRun(runID)
	abs := filepath.Join(s.DataDir, "artifacts", filepath.FromSlash(mfArtifactPath(t, mfStr(mfDig(run, "info.artifact_uri")))), "model")
	c.createModel("rooted")
	want := mfStr(c.createVersion("rooted", src, runID)["source"])
	for i, source := range []string{abs, "file://" + abs} {
		v := c.createVersion("rooted", source, runID)
		if mfStr(v["version"]) != strconv.Itoa(i+2) || mfStr(v["status"]) != "READY" || mfStr(v["source"]) != source {
			t.Errorf("source %s: %v (first version's source %s)", source, v, want)
		}
	}
	evil := filepath.Join(s.DataDir, "artifacts-evil", "model")
	if err := os.MkdirAll(evil, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, source := range []string{evil, "file://" + evil, abs + "/../../../../../artifacts-evil/model", "file://" + abs + "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/artifacts-evil/model"} {
		c.regFails("", "model-versions/create", map[string]any{"name": "rooted", "source": source}, 400, "INVALID_PARAMETER_VALUE", "Invalid model version source")
	}
}
