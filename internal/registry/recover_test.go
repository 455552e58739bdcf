package registry_test

import (
	"database/sql"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/registry"
	"github.com/slipwayml/slipway/internal/store"
	"github.com/slipwayml/slipway/internal/store/storetest"
)

// pendingRow inserts what a registration leaves when its server dies after
// reserving the version: a PENDING_REGISTRATION row last touched at
// touched (ms), and part of its files.
func pendingRow(t *testing.T, f *fixture, db *store.DB, modelID, version, touched int64, stage string) string {
	t.Helper()
	err := db.Tx(f.ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(f.ctx, db.Q(`INSERT INTO model_versions
			(model_id, version, creation_time, last_updated_time, description, user_id, current_stage, source, run_id, run_link, status, storage_location)
			VALUES (?, ?, ?, ?, '', NULL, ?, 'runs:/abc/model', '', '', ?, '')`), modelID, version, touched, touched, stage, registry.StatusPending)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	dir := "registry/" + strconv.FormatInt(modelID, 10) + "/" + strconv.FormatInt(version, 10)
	if _, err := f.blobs.Put(f.ctx, dir+"/files/model.pkl", strings.NewReader("half a mod")); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestRecoverPending(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := f.ctx
		f.model("m")
		runID, _ := f.run(modelFiles)
		f.version("m", "runs:/"+runID+"/model", "")
		var id int64
		if err := db.Read.QueryRowContext(ctx, db.Q(`SELECT model_id FROM registered_models WHERE name = ?`), "m").Scan(&id); err != nil {
			t.Fatal(err)
		}

		now := f.now()
		stale := now.Add(-registry.PendingStaleAfter - time.Minute).UnixMilli()
		abandoned := pendingRow(t, f, db, id, 2, stale, registry.StageNone)
		copying := pendingRow(t, f, db, id, 3, now.Add(-time.Minute).UnixMilli(), registry.StageNone)
		deletedAbandoned := pendingRow(t, f, db, id, 4, stale, "Deleted_Internal")

		failed, err := f.reg.RecoverPending(ctx, now.Add(-registry.PendingStaleAfter))
		if err != nil {
			t.Fatal(err)
		}
		if len(failed) != 1 || failed[0].Name != "m" || failed[0].Version != 2 || failed[0].Status != registry.StatusFailed {
			t.Fatalf("recovered %+v, want version 2 of m", failed)
		}

		v2, err := f.reg.GetModelVersion(ctx, "m", 2)
		if err != nil {
			t.Fatal(err)
		}
		if v2.Status != registry.StatusFailed || !strings.Contains(v2.StatusMessage, "Registration did not finish") {
			t.Fatalf("abandoned version reads back as %s %q", v2.Status, v2.StatusMessage)
		}
		if _, err := f.blobs.Stat(ctx, abandoned); !errs.Is(err, errs.NotFound) {
			t.Fatalf("partial files of the abandoned version: %v", err)
		}
		if _, err := f.blobs.Stat(ctx, deletedAbandoned); !errs.Is(err, errs.NotFound) {
			t.Fatalf("partial files of the deleted abandoned version: %v", err)
		}
		if _, err := f.reg.GetModelVersion(ctx, "m", 4); !errs.Is(err, errs.NotFound) {
			t.Fatalf("a deleted version came back: %v", err)
		}
		// A registration still within its heartbeats is left alone.
		v3, err := f.reg.GetModelVersion(ctx, "m", 3)
		if err != nil || v3.Status != registry.StatusPending {
			t.Fatalf("the registration in progress: %+v %v", v3, err)
		}
		if _, err := f.blobs.Stat(ctx, copying); err != nil {
			t.Fatalf("files of the registration in progress: %v", err)
		}
		// Others are untouched.
		if rep, err := f.reg.Verify(ctx, "m", 1); err != nil || !rep.OK() {
			t.Fatalf("v1 after recovery: %+v %v", rep, err)
		}
		if _, err := f.reg.DownloadURI(ctx, "m", 2); !errs.Is(err, errs.FailedPrecondition) {
			t.Fatalf("download of a failed version: %v", err)
		}

		// The failed version keeps its number; it is not latest.
		next := f.version("m", "runs:/"+runID+"/model", "")
		if next.Version != 5 {
			t.Fatalf("next registration got version %d, want 5", next.Version)
		}
		m, err := f.reg.GetRegisteredModel(ctx, "m")
		if err != nil {
			t.Fatal(err)
		}
		if len(m.LatestVersions) != 1 || m.LatestVersions[0].Version != 5 {
			t.Fatalf("latest versions %+v", m.LatestVersions)
		}
		var audited int
		if err := db.Read.QueryRowContext(ctx, db.Q(`SELECT COUNT(*) FROM audit_log WHERE actor = ? AND target_version = 2`), registry.RecoveryActor).Scan(&audited); err != nil {
			t.Fatal(err)
		}
		if audited != 1 {
			t.Fatalf("%d audit entries for the recovery, want 1", audited)
		}

		// Running again changes nothing; a failed version can be deleted.
		if again, err := f.reg.RecoverPending(ctx, now.Add(-registry.PendingStaleAfter)); err != nil || len(again) != 0 {
			t.Fatalf("second recovery: %+v %v", again, err)
		}
		if err := f.reg.DeleteModelVersion(ctx, "m", 2); err != nil {
			t.Fatal(err)
		}
	})
}
