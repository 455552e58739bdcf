package tracking

import (
	"container/list"
	"slices"
	"sync"
)

// runCacheBytes bounds the memory the run cache holds: about 20,000 runs
// of 20 params and 20 metrics.
const runCacheBytes = 64 << 20

// runCache keeps the runs search-runs loaded, so that the next search
// answering with them reads only its id query, not about 45 rows a run.
// A page of 1,000 runs is 45,000 rows through database/sql, most of its
// cost (docs/benchmarks.md).
//
// An entry is served only at the version it was loaded at. A run's version
// goes up in the transaction of every write to it (checkRunActive, and the
// lifecycle updates), and the search reads it in the same statement that
// picks the run, so a match means nothing has been written to the run
// since. This holds across servers sharing one PostgreSQL database too:
// the version is in the database, not in this process.
//
// Least recently used entries are dropped past the limit. Entries are
// never changed once put, so copies are made outside the lock.
type runCache struct {
	mu    sync.Mutex
	limit int // bytes, as runSize counts them
	size  int
	order *list.List // of *cachedRun, most recently used first
	byID  map[string]*list.Element
}

type cachedRun struct {
	run     Run
	version int64
	size    int
}

func newRunCache(limit int) *runCache {
	return &runCache{limit: limit, order: list.New(), byID: make(map[string]*list.Element)}
}

// get returns a copy of run id as loaded at version.
func (c *runCache) get(id string, version int64) (Run, bool) {
	c.mu.Lock()
	e, ok := c.byID[id]
	var cr *cachedRun
	if ok {
		cr = e.Value.(*cachedRun)
		ok = cr.version == version
	}
	if ok {
		c.order.MoveToFront(e)
	}
	c.mu.Unlock()
	if !ok {
		return Run{}, false
	}
	return cloneRun(cr.run), true
}

// put records run as loaded at version, unless a newer version is cached.
func (c *runCache) put(run Run, version int64) {
	cr := &cachedRun{run: cloneRun(run), version: version, size: runSize(run)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byID[run.Info.RunID]; ok {
		old := e.Value.(*cachedRun)
		if old.version > version {
			return
		}
		c.size -= old.size
		c.order.Remove(e)
	}
	c.byID[run.Info.RunID] = c.order.PushFront(cr)
	c.size += cr.size
	for c.size > c.limit {
		last := c.order.Back()
		old := last.Value.(*cachedRun)
		c.order.Remove(last)
		delete(c.byID, old.run.Info.RunID)
		c.size -= old.size
	}
}

// cloneRun copies the slices of r, so that neither the cache nor a caller
// can change what the other holds.
func cloneRun(r Run) Run {
	if r.Info.EndTime != nil {
		end := *r.Info.EndTime
		r.Info.EndTime = &end
	}
	r.Metrics = slices.Clone(r.Metrics)
	r.Params = slices.Clone(r.Params)
	r.Tags = slices.Clone(r.Tags)
	r.Inputs = slices.Clone(r.Inputs)
	for i := range r.Inputs {
		r.Inputs[i].Tags = slices.Clone(r.Inputs[i].Tags)
	}
	return r
}

// runSize estimates the bytes an entry holds: its strings and a fixed
// amount for each struct and map slot.
func runSize(r Run) int {
	const overhead = 64
	i := r.Info
	n := 4*overhead + len(i.RunID) + len(i.ExperimentID) + len(i.RunName) + len(i.UserID) +
		len(i.Status) + len(i.ArtifactURI) + len(i.LifecycleStage)
	for _, m := range r.Metrics {
		n += overhead + len(m.Key)
	}
	for _, p := range r.Params {
		n += overhead + len(p.Key) + len(p.Value)
	}
	for _, t := range r.Tags {
		n += overhead + len(t.Key) + len(t.Value)
	}
	for _, in := range r.Inputs {
		d := in.Dataset
		n += 2*overhead + len(d.Name) + len(d.Digest) + len(d.SourceType) + len(d.Source) + len(d.Schema) + len(d.Profile)
		for _, t := range in.Tags {
			n += overhead + len(t.Key) + len(t.Value)
		}
	}
	return n
}
