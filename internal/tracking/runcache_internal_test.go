package tracking

import "testing"

func cacheRun(id, param string) Run {
	return Run{Info: RunInfo{RunID: id}, Params: []Param{{Key: "p", Value: param}}}
}

func TestRunCacheVersionsAndEviction(t *testing.T) {
	one := runSize(cacheRun("a", "x"))
	c := newRunCache(3 * one)
	c.put(cacheRun("a", "x"), 1)
	if _, ok := c.get("a", 2); ok {
		t.Fatal("served run a at version 2, cached at 1")
	}
	if r, ok := c.get("a", 1); !ok || r.Params[0].Value != "x" {
		t.Fatalf("get(a, 1) = %+v, %v", r, ok)
	}
	// An older load never replaces a newer one.
	c.put(cacheRun("a", "y"), 3)
	c.put(cacheRun("a", "old"), 2)
	if r, ok := c.get("a", 3); !ok || r.Params[0].Value != "y" {
		t.Fatalf("after an older put, get(a, 3) = %+v, %v", r, ok)
	}
	// Past the limit the least recently used goes: b, not a (read after b
	// was put).
	c.put(cacheRun("b", "x"), 1)
	c.put(cacheRun("c", "x"), 1)
	c.get("a", 3)
	c.put(cacheRun("d", "x"), 1)
	for id, want := range map[string]bool{"a": true, "b": false, "c": true, "d": true} {
		v := int64(1)
		if id == "a" {
			v = 3
		}
		if _, ok := c.get(id, v); ok != want {
			t.Errorf("run %s cached: %v, want %v", id, ok, want)
		}
	}
	if c.size > c.limit || c.size != 3*one {
		t.Fatalf("size %d, limit %d, want %d", c.size, c.limit, 3*one)
	}
	if len(c.byID) != c.order.Len() {
		t.Fatalf("%d ids indexed, %d entries", len(c.byID), c.order.Len())
	}
}
