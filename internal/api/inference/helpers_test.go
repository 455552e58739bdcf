package inference

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/models"
	"github.com/slipwayml/slipway/internal/models/modeldir"
	"github.com/slipwayml/slipway/internal/tabular"
	"github.com/slipwayml/slipway/internal/training"
)

// testEndpoint serves a real model opened through modeldir: an adapter of
// the model to the Endpoint contract, not a stand-in for it.
type testEndpoint struct {
	name, version string
	versions      []string
	opened        *modeldir.Opened
	notReady      bool

	mu   sync.Mutex
	last Request // a copy of the last request, for assertions
}

func (e *testEndpoint) Name() string                { return e.name }
func (e *testEndpoint) Version() string             { return e.version }
func (e *testEndpoint) Versions() []string          { return e.versions }
func (e *testEndpoint) Platform() string            { return "xgboost" }
func (e *testEndpoint) Signature() models.Signature { return e.opened.Model.Signature() }
func (e *testEndpoint) Features() []tabular.Feature { return e.opened.Features }
func (e *testEndpoint) Ready() bool                 { return !e.notReady }

func (e *testEndpoint) Infer(ctx context.Context, req *Request, res *Result) error {
	e.mu.Lock()
	e.last = *req
	e.last.X = append([]float32(nil), req.X...)
	e.last.Body = append([]byte(nil), req.Body...)
	e.mu.Unlock()
	res.Version = e.version
	return e.opened.Model.Predict(req.X, res.Outputs)
}

func (e *testEndpoint) lastRequest() Request {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.last
}

// testResolver finds endpoints by name and version.
type testResolver struct {
	byName map[string]*testEndpoint
	// byVersion maps "name/version" to an endpoint for explicit versions.
	byVersion map[string]*testEndpoint
	notReady  bool

	mu      sync.Mutex
	lastKey string // the routing key of the last lookup
}

func (r *testResolver) Endpoint(ctx context.Context, name, version, routingKey string) (Endpoint, error) {
	r.mu.Lock()
	r.lastKey = routingKey
	r.mu.Unlock()
	if version != "" {
		if e, ok := r.byVersion[name+"/"+version]; ok {
			return e, nil
		}
		return nil, errs.NotFoundf("model %q has no version %q", name, version)
	}
	if e, ok := r.byName[name]; ok {
		return e, nil
	}
	return nil, errs.NotFoundf("no model %q", name)
}

func (r *testResolver) Names(ctx context.Context) []string {
	var out []string
	for n := range r.byName {
		out = append(out, n)
	}
	return out
}

func (r *testResolver) Ready(ctx context.Context) bool { return !r.notReady }

// fixtures are the real models the tests serve.
type fixtures struct {
	small *modeldir.Opened // xgboost testdata: radius, texture, perimeter, area; binary
	cat   *modeldir.Opened // trained: size (numeric), color (categorical with levels)
	multi *modeldir.Opened // trained: multi:softprob, 3 classes, features a, b
	wide  *modeldir.Opened // trained: 30 numeric features f00..f29
}

var (
	fixOnce sync.Once
	fix     fixtures
	fixErr  error
)

func loadFixtures(t testing.TB) *fixtures {
	t.Helper()
	fixOnce.Do(func() { fixErr = buildFixtures() })
	if fixErr != nil {
		t.Fatal(fixErr)
	}
	return &fix
}

func buildFixtures() error {
	var err error
	if fix.small, err = modeldir.Open("../../models/xgboost/testdata/small.json"); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "inference-test")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	train := func(name string, d *training.Dataset, params map[string]string, attrs map[string]string) (*modeldir.Opened, error) {
		p := training.DefaultGBDTParams()
		for k, v := range params {
			if err := p.Set(k, v); err != nil {
				return nil, err
			}
		}
		res, err := training.TrainGBDT(context.Background(), p, d, nil)
		if err != nil {
			return nil, err
		}
		for k, v := range attrs {
			res.Model.SetAttribute(k, v)
		}
		path := filepath.Join(dir, name+".json")
		if err := res.Model.WriteFile(path); err != nil {
			return nil, err
		}
		return modeldir.Open(path)
	}
	nan := float32(math.NaN())
	rng := rand.New(rand.NewPCG(1, 2))
	// Categorical: the label depends on color and size.
	var size, color, labels []float32
	for i := 0; i < 200; i++ {
		c := float32(rng.IntN(3))
		s := float32(rng.NormFloat64()*2 + 5)
		if i%17 == 0 {
			s = nan
		}
		l := float32(0)
		if c == 2 || (c == 1 && s > 5) {
			l = 1
		}
		size, color, labels = append(size, s), append(color, c), append(labels, l)
	}
	levels, _ := json.Marshal(map[string][]string{"color": {"blue", "green", "red"}})
	fix.cat, err = train("cat", &training.Dataset{
		Columns: [][]float32{size, color}, Names: []string{"size", "color"},
		Categorical: []bool{false, true}, Labels: labels,
	}, map[string]string{"objective": "binary:logistic", "num_boost_round": "8", "max_depth": "3"},
		map[string]string{modeldir.CategoriesAttribute: string(levels)})
	if err != nil {
		return fmt.Errorf("categorical model: %w", err)
	}
	// Multi-class.
	var a, b, ml []float32
	for i := 0; i < 300; i++ {
		x, y := float32(rng.Float64()*10), float32(rng.Float64()*10)
		k := float32(0)
		switch {
		case x > 6:
			k = 2
		case y > 5:
			k = 1
		}
		a, b, ml = append(a, x), append(b, y), append(ml, k)
	}
	fix.multi, err = train("multi", &training.Dataset{Columns: [][]float32{a, b}, Names: []string{"a", "b"}, Labels: ml},
		map[string]string{"objective": "multi:softprob", "num_class": "3", "num_boost_round": "6", "max_depth": "3"}, nil)
	if err != nil {
		return fmt.Errorf("multi-class model: %w", err)
	}
	// 30 features.
	cols := make([][]float32, 30)
	names := make([]string, 30)
	var wl []float32
	for i := 0; i < 400; i++ {
		sum := float32(0)
		for j := range cols {
			v := float32(rng.NormFloat64())
			cols[j] = append(cols[j], v)
			sum += v * float32(j%5-2)
		}
		wl = append(wl, sum)
	}
	for j := range names {
		names[j] = fmt.Sprintf("f%02d", j)
	}
	fix.wide, err = train("wide", &training.Dataset{Columns: cols, Names: names, Labels: wl},
		map[string]string{"objective": "reg:squarederror", "num_boost_round": "50", "max_depth": "4"}, nil)
	if err != nil {
		return fmt.Errorf("wide model: %w", err)
	}
	return nil
}

// harness is a mux serving the fixtures.
type harness struct {
	t   testing.TB
	mux *http.ServeMux
	srv *Server
	res *testResolver
	eps map[string]*testEndpoint
}

func newHarness(t testing.TB, opts Options) *harness {
	f := loadFixtures(t)
	eps := map[string]*testEndpoint{
		"small":   {name: "small", version: "3", versions: []string{"2", "3"}, opened: f.small},
		"cat":     {name: "cat", version: "1", opened: f.cat},
		"multi":   {name: "multi", version: "1", opened: f.multi},
		"wide":    {name: "wide", opened: f.wide},
		"loading": {name: "loading", opened: f.small, notReady: true},
		// The categorical model as if it knew its categories only by code.
		"catcodes": {name: "catcodes", opened: &modeldir.Opened{Model: f.cat.Model, Features: []tabular.Feature{f.cat.Features[0], {Name: "color", Categorical: true}}}},
	}
	res := &testResolver{byName: eps, byVersion: map[string]*testEndpoint{
		"small/2": {name: "small", version: "2", versions: []string{"2", "3"}, opened: f.small},
		"small/3": eps["small"],
	}}
	mux := http.NewServeMux()
	srv := Register(mux, res, opts)
	mux.HandleFunc("POST /deployments/{name}/invocations", srv.ServeInvocations)
	mux.HandleFunc("POST /invocations", srv.ServeInvocations)
	mux.HandleFunc("GET /ping", srv.ServePing)
	return &harness{t: t, mux: mux, srv: srv, res: res, eps: eps}
}

func (h *harness) do(method, path, contentType, body string, header ...string) *httptest.ResponseRecorder {
	h.t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.mux.ServeHTTP(w, r)
	return w
}

// predict scores rows with the model directly.
func predict(t testing.TB, m models.Model, rows [][]float32) []float32 {
	t.Helper()
	var x []float32
	for _, r := range rows {
		x = append(x, r...)
	}
	out := make([]float32, len(rows)*m.NumOutputs())
	if err := m.Predict(x, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// jsonNumber renders a float32 for a request (null for NaN).
func jsonNumber(v float32) string {
	if v != v {
		return "null"
	}
	return strconv.FormatFloat(float64(v), 'g', -1, 32)
}

// float32s reads a JSON array of numbers (or nulls) exactly as float32.
func float32s(t testing.TB, raw json.RawMessage) []float32 {
	t.Helper()
	out, err := parseFloat32s(raw)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func parseFloat32s(raw json.RawMessage) ([]float32, error) {
	var nums []*json.Number
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	if err := dec.Decode(&nums); err != nil {
		return nil, fmt.Errorf("data %s: %v", raw, err)
	}
	out := make([]float32, len(nums))
	for i, n := range nums {
		if n == nil {
			out[i] = float32(math.NaN())
			continue
		}
		v, err := strconv.ParseFloat(string(*n), 32)
		if err != nil {
			return nil, err
		}
		out[i] = float32(v)
	}
	return out, nil
}

func sameFloats(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] && !(a[i] != a[i] && b[i] != b[i]) {
			return false
		}
	}
	return true
}
