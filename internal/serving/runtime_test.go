package serving

import (
	"testing"
	"time"

	"github.com/slipwayml/slipway/internal/store"
	"github.com/slipwayml/slipway/internal/store/storetest"
)

// A version no deployment serves any more is unloaded once it has been
// unused for UnloadAfter, and callers hear of it; a version still served
// stays loaded, and an unloaded one loads again when a change names it.
func TestUnusedVersionsAreUnloaded(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newRolloutFixture(t, db)
		var unloaded []int64
		f.s.OnUnload(func(m *Loaded) { unloaded = append(unloaded, m.Version) })
		if _, err := f.s.Canary(f.ctx, "credit", "models:/credit/2", 50); err != nil {
			t.Fatal(err)
		}
		if _, err := f.s.Rollback(f.ctx, "credit"); err != nil {
			t.Fatal(err)
		}
		loaded := func() int {
			f.s.loader.mu.Lock()
			defer f.s.loader.mu.Unlock()
			return len(f.s.loader.loaded)
		}
		f.s.sync(f.ctx)
		f.clock = f.clock.Add(UnloadAfter - time.Second)
		f.s.sync(f.ctx)
		if loaded() != 2 || len(unloaded) != 0 {
			t.Fatalf("before UnloadAfter: %d loaded, unloaded %v", loaded(), unloaded)
		}
		f.clock = f.clock.Add(2 * time.Second)
		f.s.sync(f.ctx)
		if loaded() != 1 || len(unloaded) != 1 || unloaded[0] != 2 {
			t.Fatalf("after UnloadAfter: %d loaded, unloaded %v", loaded(), unloaded)
		}
		if got := f.shares("credit", 100); got["1"] != 100 {
			t.Errorf("the served version: %v", got)
		}
		if _, err := f.s.Canary(f.ctx, "credit", "models:/credit/2", 50); err != nil {
			t.Fatal(err)
		}
		if loaded() != 2 {
			t.Errorf("a canary of an unloaded version: %d loaded", loaded())
		}
	})
}
