package serving

import (
	"context"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/models/modeldir"
	"github.com/slipwayml/slipway/internal/registry"
)

// Loaded is a model version opened by a native runtime, shared by every
// route and deployment that serves it.
type Loaded struct {
	Name     string
	Version  int64
	Platform string
	Model    *modeldir.Opened
}

// VersionString is the version as the protocols carry it.
func (l *Loaded) VersionString() string { return strconv.FormatInt(l.Version, 10) }

// loader exports registry versions to local folders and opens them, once
// per version, and closes them again once no deployment serves them.
type loader struct {
	s       *Service
	mu      sync.Mutex
	loaded  map[string]*Loaded   // name/version
	loading map[string]*loadCall // name/version
	// unused holds when each loaded version was first seen served by no
	// deployment.
	unused map[string]time.Time
}

// UnloadAfter is how long a version no deployment serves stays loaded:
// requests that picked it before a swap finish on it, and a rollback
// within the window reuses it.
var UnloadAfter = 30 * time.Second

// unload closes the versions no live table has served for UnloadAfter.
// Python workers are drained, and what the serving layer cached for a
// version is dropped (OnUnload).
func (l *loader) unload(ctx context.Context, served map[*Loaded]bool) {
	now := l.s.Now()
	var gone []*Loaded
	l.mu.Lock()
	for key, m := range l.loaded {
		if served[m] {
			delete(l.unused, key)
			continue
		}
		since, ok := l.unused[key]
		if !ok {
			l.unused[key] = now
			continue
		}
		if now.Sub(since) >= UnloadAfter {
			delete(l.loaded, key)
			delete(l.unused, key)
			gone = append(gone, m)
		}
	}
	l.mu.Unlock()
	l.s.mu.Lock()
	hooks := l.s.onUnload
	l.s.mu.Unlock()
	for _, m := range gone {
		for _, fn := range hooks {
			fn(m)
		}
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		if err := m.Model.Close(ctx); err != nil {
			l.s.Log.Warn("closing an unused model", "model", m.Name, "version", m.Version, "err", err)
		}
		cancel()
		l.s.Log.Info("model unloaded: no deployment serves it", "model", m.Name, "version", m.Version)
	}
}

// closeAll closes every loaded model, draining Python workers, when the
// service stops.
func (l *loader) closeAll(ctx context.Context) {
	l.mu.Lock()
	all := l.loaded
	l.loaded, l.unused = map[string]*Loaded{}, map[string]time.Time{}
	l.mu.Unlock()
	for _, m := range all {
		if err := m.Model.Close(ctx); err != nil {
			l.s.Log.Warn("closing a model", "model", m.Name, "version", m.Version, "err", err)
		}
	}
}

// all returns the loaded versions.
func (l *loader) all() []*Loaded {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]*Loaded, 0, len(l.loaded))
	for _, m := range l.loaded {
		out = append(out, m)
	}
	return out
}

// OnUnload registers fn to run when a version is unloaded, so that what a
// caller cached for it can be dropped.
func (s *Service) OnUnload(fn func(*Loaded)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onUnload = append(s.onUnload, fn)
}

// resolve finds the version a reference points at now.
func (l *loader) resolve(ctx context.Context, ref ModelRef) (registry.ModelVersion, error) {
	if ref.Alias != "" {
		return l.s.models.GetVersionByAlias(ctx, ref.Name, ref.Alias)
	}
	return l.s.models.GetModelVersion(ctx, ref.Name, ref.Version)
}

// load opens a version, exporting its verified files first. A version a
// native runtime cannot open is refused with the runtime's reason.
func (l *loader) load(ctx context.Context, v registry.ModelVersion) (*Loaded, error) {
	key := v.Name + "/" + strconv.FormatInt(v.Version, 10)
	l.mu.Lock()
	if m := l.loaded[key]; m != nil {
		l.mu.Unlock()
		return m, nil
	}
	// One load per version at a time, outside the lock: a Python model
	// can take seconds to start, and the metrics and the unloader must
	// not wait for it.
	if c := l.loading[key]; c != nil {
		l.mu.Unlock()
		<-c.done
		return c.m, c.err
	}
	c := &loadCall{done: make(chan struct{})}
	l.loading[key] = c
	l.mu.Unlock()
	c.m, c.err = l.open(ctx, v)
	l.mu.Lock()
	delete(l.loading, key)
	if c.err == nil {
		l.loaded[key] = c.m
	}
	l.mu.Unlock()
	close(c.done)
	return c.m, c.err
}

// loadCall is a load in progress that other callers wait for.
type loadCall struct {
	done chan struct{}
	m    *Loaded
	err  error
}

// open exports a version's verified files, once, and opens them.
func (l *loader) open(ctx context.Context, v registry.ModelVersion) (*Loaded, error) {
	dir := filepath.Join(l.s.Dir, "models", v.Name, strconv.FormatInt(v.Version, 10))
	if _, err := os.Stat(dir); err != nil {
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			return nil, err
		}
		tmp, err := os.MkdirTemp(filepath.Dir(dir), ".export-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		if err := l.s.models.Export(ctx, v, tmp); err != nil {
			return nil, err
		}
		if err := os.Rename(tmp, dir); err != nil {
			return nil, err
		}
	}
	opened, err := modeldir.Open(dir)
	if err != nil {
		return nil, errs.Invalid("models:/%s/%d cannot be served: %v", v.Name, v.Version, err)
	}
	return &Loaded{Name: v.Name, Version: v.Version, Platform: opened.Runtime, Model: opened}, nil
}

// build resolves and loads every model of a split into a routing table.
func (l *loader) build(ctx context.Context, sp Split) (*table, error) {
	t := &table{split: sp}
	cum := 0
	for i, r := range sp.Routes {
		m, err := l.route(ctx, r.Model)
		if err != nil {
			return nil, inField(err, fmt.Sprintf("split.routes[%d].model %s", i, r.Model))
		}
		cum += r.Weight
		t.routes = append(t.routes, liveRoute{Route: r, upTo: cum, model: m})
	}
	if sh := sp.Shadow; sh != nil {
		m, err := l.route(ctx, sh.Model)
		if err != nil {
			return nil, inField(err, "split.shadow.model "+sh.Model)
		}
		t.shadow = &liveRoute{Route: Route{Model: sh.Model, Weight: sh.Percent, Role: "shadow"}, upTo: sh.Percent, model: m}
	}
	return t, nil
}

// inField puts the request field an error is about in front of its
// message, keeping its code.
func inField(err error, field string) error {
	if errs.CodeOf(err) == errs.Internal {
		return errs.Wrap(err, field)
	}
	return errs.New(errs.CodeOf(err), "%s: %s", field, errs.Message(err))
}

func (l *loader) route(ctx context.Context, ref string) (*Loaded, error) {
	r, err := ParseModelRef("model", ref)
	if err != nil {
		return nil, err
	}
	v, err := l.resolve(ctx, r)
	if err != nil {
		return nil, err
	}
	return l.load(ctx, v)
}

// table is a deployment's routing as served: immutable once built, and
// replaced whole.
type table struct {
	split    Split
	revision int64
	routes   []liveRoute
	shadow   *liveRoute
}

type liveRoute struct {
	Route
	upTo  int // cumulative weight: this route takes draws below upTo
	model *Loaded
}

func (t *table) serving() []Serving {
	var out []Serving
	for _, r := range t.routes {
		out = append(out, Serving{Model: r.Model, Version: r.model.VersionString(), Platform: r.model.Platform, Weight: r.Weight, Role: r.Role})
	}
	if t.shadow != nil {
		out = append(out, Serving{Model: t.shadow.Model, Version: t.shadow.model.VersionString(), Platform: t.shadow.model.Platform,
			Weight: t.shadow.Weight, Role: "shadow"})
	}
	return out
}

// Pick chooses the model version that answers a request, and the shadow
// that also sees it (nil for none). A routing key (a user or session id)
// always lands on the same route while the split is unchanged, which is
// what A/B tests need; without one the draw is random.
func (t *table) pick(routingKey string) (answer, shadow *Loaded) {
	var draw int
	if routingKey != "" {
		h := fnv.New32a()
		h.Write([]byte(routingKey))
		draw = int(h.Sum32() % 100)
	} else {
		draw = rand.IntN(100)
	}
	answer = t.routes[len(t.routes)-1].model
	for _, r := range t.routes {
		if draw < r.upTo {
			answer = r.model
			break
		}
	}
	if t.shadow != nil && rand.IntN(100) < t.shadow.upTo {
		shadow = t.shadow.model
	}
	return answer, shadow
}

// liveDeployment holds the table requests read; swapping it never blocks
// or drops one.
type liveDeployment struct {
	t atomic.Pointer[table]
}

func (s *Service) swap(name string, t *table) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t == nil {
		delete(s.live, name)
		return
	}
	ld := s.live[name]
	if ld == nil {
		ld = &liveDeployment{}
		s.live[name] = ld
	}
	ld.t.Store(t)
}

func (s *Service) table(name string) *table {
	s.mu.Lock()
	ld := s.live[name]
	s.mu.Unlock()
	if ld == nil {
		return nil
	}
	return ld.t.Load()
}

// Route picks the model version that answers a request to a deployment,
// and the shadow that also sees it.
func (s *Service) Route(name, routingKey string) (answer, shadow *Loaded, err error) {
	t := s.table(name)
	if t == nil {
		return nil, nil, notFound(name)
	}
	answer, shadow = t.pick(routingKey)
	return answer, shadow, nil
}

// Version returns a version a deployment serves (on any route or as its
// shadow), for requests that name one.
func (s *Service) Version(name, version string) (*Loaded, error) {
	t := s.table(name)
	if t == nil {
		return nil, notFound(name)
	}
	for _, r := range t.routes {
		if r.model.VersionString() == version {
			return r.model, nil
		}
	}
	if t.shadow != nil && t.shadow.model.VersionString() == version {
		return t.shadow.model, nil
	}
	return nil, errs.NotFoundf("deployment %q does not serve version %s", name, version)
}

// ServedVersions returns the versions a deployment serves, routes first.
func (s *Service) ServedVersions(name string) []string {
	t := s.table(name)
	if t == nil {
		return nil
	}
	var out []string
	for _, sv := range t.serving() {
		out = append(out, sv.Version)
	}
	return out
}

// Names returns the deployments being served.
func (s *Service) Names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.live))
	for n := range s.live {
		out = append(out, n)
	}
	return out
}

// SyncEvery is how often the service reloads deployments changed by
// another server and follows aliases that moved.
var SyncEvery = 2 * time.Second

// Run serves the stored deployments and keeps them current until ctx
// ends: a deployment changed through another server, or a route whose
// alias was moved by a promotion, is loaded and swapped in. It judges
// running rollouts, unloads versions no deployment serves any more, and
// runs the prediction log's writer, which writes what is queued before Run
// returns; then it closes every loaded model.
func (s *Service) Run(ctx context.Context) {
	logged := make(chan struct{})
	go func() { s.plog.run(ctx); close(logged) }()
	defer func() {
		<-logged
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		s.loader.closeAll(ctx)
	}()
	t := time.NewTicker(SyncEvery)
	defer t.Stop()
	rollouts := time.NewTicker(RolloutCheckEvery)
	defer rollouts.Stop()
	s.sync(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.sync(ctx)
		case <-rollouts.C:
			s.checkRollouts(ctx)
		}
	}
}

func (s *Service) sync(ctx context.Context) {
	ds, err := s.List(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.Log.Warn("reading deployments", "err", err)
		}
		return
	}
	seen := map[string]bool{}
	for _, d := range ds {
		seen[d.Name] = true
		cur := s.table(d.Name)
		if cur != nil && cur.revision == d.Revision && !s.aliasMoved(ctx, cur) {
			continue
		}
		next, err := s.loader.build(ctx, d.Split)
		if err != nil {
			s.Log.Error("loading deployment", "deployment", d.Name, "err", err)
			continue
		}
		next.revision = d.Revision
		s.swap(d.Name, next)
		s.recordServed(ctx, d.Name, next)
		s.Log.Info("deployment serving", "deployment", d.Name, "revision", d.Revision, "serving", next.serving())
	}
	for _, name := range s.Names() {
		if !seen[name] {
			s.swap(name, nil)
		}
	}
	s.loader.unload(ctx, s.servedModels())
}

// servedModels is every version a live table routes to or shadows.
func (s *Service) servedModels() map[*Loaded]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[*Loaded]bool{}
	for _, ld := range s.live {
		t := ld.t.Load()
		for _, r := range t.routes {
			out[r.model] = true
		}
		if t.shadow != nil {
			out[t.shadow.model] = true
		}
	}
	return out
}

// aliasMoved says whether a route or the shadow of t names an alias that
// now points at another version.
func (s *Service) aliasMoved(ctx context.Context, t *table) bool {
	routes := t.routes
	if t.shadow != nil {
		routes = append(routes[:len(routes):len(routes)], *t.shadow)
	}
	for _, r := range routes {
		ref, err := ParseModelRef("model", r.Model)
		if err != nil || ref.Alias == "" {
			continue
		}
		v, err := s.loader.resolve(ctx, ref)
		if err == nil && v.Version != r.model.Version {
			return true
		}
	}
	return false
}
