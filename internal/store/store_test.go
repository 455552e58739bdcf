package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/slipwayml/slipway/internal/store"
	"github.com/slipwayml/slipway/internal/store/storetest"
)

func TestRebind(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"SELECT 1", "SELECT 1"},
		{"a = ? AND b = ?", "a = $1 AND b = $2"},
		{"a = '?' AND b = ?", "a = '?' AND b = $1"},
		{`"we?ird" = ?`, `"we?ird" = $1`},
	} {
		if got := store.Rebind(c.in); got != c.want {
			t.Errorf("Rebind(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestMigrationsAndBatch(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		var v int
		if err := db.Read.QueryRow(`SELECT MAX(version) FROM schema_migrations`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		if v != store.SchemaVersion(db.Dialect) {
			t.Fatalf("schema version %d, want %d", v, store.SchemaVersion(db.Dialect))
		}
		// Many concurrent writers share commits; one failing writer must not
		// undo the others' writes.
		var wg sync.WaitGroup
		errc := make(chan error, 64)
		for i := range 64 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errc <- db.Batch(ctx, func(tx *sql.Tx) error {
					if _, err := tx.Exec(db.Q(`INSERT INTO experiments (experiment_id, name, artifact_location, creation_time, last_update_time) VALUES (?, ?, '', 0, 0)`), i+1, fmt.Sprintf("e%d", i)); err != nil {
						return err
					}
					if i%8 == 0 {
						return errors.New("refused")
					}
					return nil
				})
			}()
		}
		wg.Wait()
		close(errc)
		failed := 0
		for err := range errc {
			if err != nil {
				if err.Error() != "refused" {
					t.Fatalf("unexpected error: %v", err)
				}
				failed++
			}
		}
		if failed != 8 {
			t.Fatalf("%d writers failed, want 8", failed)
		}
		var n int
		if err := db.Read.QueryRow(`SELECT COUNT(*) FROM experiments`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 56 {
			t.Fatalf("%d experiments committed, want 56", n)
		}
	})
}

func TestReopenKeepsData(t *testing.T) {
	path := t.TempDir() + "/slipway.db"
	ctx := context.Background()
	db, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Batch(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO experiments (experiment_id, name, artifact_location, creation_time, last_update_time) VALUES (7, 'kept', '', 0, 0)`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err = store.Open(ctx, path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer db.Close()
	var name string
	if err := db.Read.QueryRow(`SELECT name FROM experiments WHERE experiment_id = 7`).Scan(&name); err != nil || name != "kept" {
		t.Fatalf("after reopen: name=%q err=%v", name, err)
	}
}

// Servers that start together against one PostgreSQL database must not race
// each other through the migrations.
func TestConcurrentMigrationsPostgres(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	var wg sync.WaitGroup
	errc := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, err := store.Open(context.Background(), dsn)
			if err == nil {
				db.Close()
			}
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
}

// Optimize must work on a fresh database and one with data, and leave
// queries and writes working; on SQLite it goes through the single writer,
// so it must not deadlock with a batch.
func TestOptimize(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if err := db.Optimize(ctx); err != nil {
			t.Fatalf("optimize, empty: %v", err)
		}
		err := db.Batch(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, db.Q(`INSERT INTO experiments (name, artifact_location, lifecycle_stage, creation_time, last_update_time) VALUES (?, '', 'active', 0, 0)`), "opt")
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Optimize(ctx); err != nil {
			t.Fatalf("optimize: %v", err)
		}
		var n int
		if err := db.Read.QueryRowContext(ctx, db.Q(`SELECT COUNT(*) FROM experiments WHERE name = ?`), "opt").Scan(&n); err != nil || n != 1 {
			t.Fatalf("count after optimize: %d, %v", n, err)
		}
	})
}

// A checkpoint runs on the writer between batches and leaves what was
// committed readable.
func TestCheckpoint(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		err := db.Batch(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, db.Q(`INSERT INTO experiments (name, artifact_location, lifecycle_stage, creation_time, last_update_time) VALUES (?, '', 'active', 0, 0)`), "ckpt")
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Checkpoint(ctx); err != nil {
			t.Fatalf("checkpoint: %v", err)
		}
		var n int
		if err := db.Read.QueryRowContext(ctx, db.Q(`SELECT COUNT(*) FROM experiments WHERE name = ?`), "ckpt").Scan(&n); err != nil || n != 1 {
			t.Fatalf("after the checkpoint: %d rows, %v", n, err)
		}
	})
}
