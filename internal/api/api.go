// Package api assembles Slipway's HTTP surface: the protocol handlers
// (MLflow today; native, inference later) behind one middleware chain that
// recovers panics, authenticates, logs and measures every request.
package api

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/slipwayml/slipway/internal/api/mlflow"
	v1 "github.com/slipwayml/slipway/internal/api/v1"
	"github.com/slipwayml/slipway/internal/audit"
	"github.com/slipwayml/slipway/internal/auth"
	"github.com/slipwayml/slipway/internal/blob"
	"github.com/slipwayml/slipway/internal/datasets"
	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/lineage"
	"github.com/slipwayml/slipway/internal/pipelines/runs"
	"github.com/slipwayml/slipway/internal/pipelines/triggers"
	"github.com/slipwayml/slipway/internal/registry"
	"github.com/slipwayml/slipway/internal/serving"
	"github.com/slipwayml/slipway/internal/tracking"
)

// Config holds what the HTTP layer needs from the server.
type Config struct {
	Tracking  *tracking.Service
	Artifacts *blob.Store
	// Models is the model registry (Registry is taken by Prometheus).
	Models *registry.Service
	Auth   *auth.Service
	// Datasets serves data versions on the native API; nil leaves it out.
	Datasets *datasets.Service
	// Audit serves the audit log on the native API; nil leaves it out.
	Audit *audit.Log
	// Lineage serves the provenance graph on the native API; nil leaves it out.
	Lineage *lineage.Service
	// Pipelines serves pipelines and their runs on the native API, and
	// Triggers their schedules and webhooks; nil leaves them out.
	Pipelines *runs.Service
	Triggers  *triggers.Service
	// Deployments serves deployments on the native API; nil leaves them
	// out.
	Deployments *serving.Service
	// RequireAuth makes every route but health checks demand a token.
	RequireAuth  bool
	MaxBodyBytes int64
	Log          *slog.Logger
	// Ready reports whether the server can take traffic (e.g. the database
	// answers); nil means always ready.
	Ready    func(context.Context) error
	Registry *prometheus.Registry
	Version  string
}

// New returns the root handler.
func New(cfg Config) http.Handler {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	mux := http.NewServeMux()
	h := &mlflow.Handler{Tracking: cfg.Tracking, Artifacts: cfg.Artifacts, Registry: cfg.Models, Log: cfg.Log, MaxBodyBytes: cfg.MaxBodyBytes}
	h.Register(mux)
	(&v1.Handler{Datasets: cfg.Datasets, Models: cfg.Models, Audit: cfg.Audit, Lineage: cfg.Lineage,
		Pipelines: cfg.Pipelines, Triggers: cfg.Triggers, Deployments: cfg.Deployments, Log: cfg.Log}).Register(mux)
	if cfg.Deployments != nil {
		mountInference(mux, cfg)
	}

	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("OK"))
	})
	// MLflow clients and load balancers probe /health.
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("OK"))
	})
	mux.HandleFunc("GET /version", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(cfg.Version))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if cfg.Ready != nil {
			if err := cfg.Ready(r.Context()); err != nil {
				cfg.Log.Warn("not ready", "err", err)
				http.Error(w, "not ready", http.StatusServiceUnavailable)
				return
			}
		}
		w.Write([]byte("OK"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{}))

	m := newMetrics(cfg.Registry)
	var root http.Handler = recordRoute(mux)
	root = authenticate(cfg, root)
	root = refuseUncleanPaths(root)
	root = observe(cfg.Log, m, root)
	return root
}

// publicPaths answer without a token: probes, and multipart part uploads
// whose URL carries its own capability (see mlflow.PartPath).
func public(path string) bool {
	switch path {
	case "/healthz", "/readyz", "/health", "/version", "/v2/health/live", "/v2/health/ready":
		return true
	}
	return strings.HasPrefix(path, mlflow.PartPath)
}

// pushWebhook says whether r is a push webhook delivery (POST
// /api/v1/pipelines/{name}/trigger). GitHub and GitLab cannot send an API
// token, so it takes none: the handler refuses it with 401 unless it is
// signed with the pipeline's webhook secret. The escaped path is read, so
// the segments are the ones ServeMux routes by.
func pushWebhook(r *http.Request) bool {
	if r.Method != http.MethodPost {
		return false
	}
	rest, ok := strings.CutPrefix(r.URL.EscapedPath(), v1.Prefix+"pipelines/")
	if !ok {
		return false
	}
	name, ok := strings.CutSuffix(rest, "/trigger")
	return ok && name != "" && !strings.Contains(name, "/")
}

// noAuthorization is h.Get("Authorization") == "" without canonicalising
// the key at every request.
func noAuthorization(h http.Header) bool {
	vs := h["Authorization"]
	return len(vs) == 0 || vs[0] == ""
}

func authenticate(cfg Config, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if cfg.Auth == nil || public(r.URL.Path) || pushWebhook(r) ||
			(!cfg.RequireAuth && noAuthorization(r.Header)) {
			next.ServeHTTP(w, r)
			return
		}
		p, err := cfg.Auth.FromRequest(r)
		if err != nil {
			if errs.CodeOf(err) == errs.Unauthenticated {
				w.Header().Set("WWW-Authenticate", `Basic realm="slipway"`)
			}
			writeError(w, r, err)
			return
		}
		if need := requiredRole(r); !p.Can(need) {
			writeError(w, r, errs.New(errs.PermissionDenied, "token %q has role %s; %s %s needs %s or above", p.Username, p.Role, r.Method, r.URL.Path, need))
			return
		}
		next.ServeHTTP(w, r.WithContext(auth.WithPrincipal(r.Context(), p)))
	})
}

// readOnlyPosts are POST routes that only read: MLflow sends searches as
// POST so that long filters fit in a body, and scoring a model changes
// nothing.
var readOnlyPosts = []string{"runs/search", "experiments/search", "experiments/search-datasets", "registered-models/get-latest-versions",
	"infer", "invocations"}

// requiredRole is the least role a request needs: viewers read (the audit
// log included: it holds what viewers can read anyway, plus who changed
// it), editors write, approvers approve, and only admins change a
// promotion policy, since whoever can edit it can lift any gate, or a
// pipeline, whose commands run on the server's machine. Matching
// on the path's end can only ask for more than a route needs, never less.
func requiredRole(r *http.Request) string {
	if strings.HasPrefix(r.URL.Path, v1.Prefix+"models/") {
		switch {
		case strings.HasSuffix(r.URL.Path, "/policy") && (r.Method == http.MethodPut || r.Method == http.MethodDelete):
			return auth.RoleAdmin
		case strings.HasSuffix(r.URL.Path, "/approvals") && r.Method == http.MethodPost:
			return auth.RoleApprover
		}
	}
	// A pipeline's steps run as the server's user on its machine: only an
	// admin may register, replace or delete one. Editors run them.
	if strings.HasPrefix(r.URL.Path, v1.Prefix+"pipelines/") && strings.Count(r.URL.Path, "/") == 4 &&
		(r.Method == http.MethodPut || r.Method == http.MethodDelete) {
		return auth.RoleAdmin
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return auth.RoleViewer
	case http.MethodPost:
		for _, p := range readOnlyPosts {
			if strings.HasSuffix(r.URL.Path, "/"+p) {
				return auth.RoleViewer
			}
		}
	}
	return auth.RoleEditor
}

// writeError answers in the envelope of the API the request was for.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	if strings.HasPrefix(r.URL.Path, v1.Prefix) {
		v1.WriteError(w, err)
		return
	}
	if strings.HasPrefix(r.URL.Path, "/v2/") {
		// The Open Inference Protocol's error body, which KServe clients
		// read: {"error": "..."}.
		body, _ := json.Marshal(map[string]string{"error": errs.Message(err)})
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(v1.StatusOf(err))
		w.Write(append(body, '\n'))
		return
	}
	mlflow.WriteError(w, err)
}

// refuseUncleanPaths answers a path with ".", ".." or empty segments (after
// one decoding, so %2e%2e counts) with 400. ServeMux would otherwise redirect
// to the cleaned path, and a client that follows the redirect would write or
// delete an artifact other than the one it named.
func refuseUncleanPaths(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if uncleanPath(r.URL.Path) {
			mlflow.WriteError(w, errs.Invalid("Invalid path %q: '.', '..' and empty segments are not allowed", r.URL.Path))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func uncleanPath(p string) bool {
	// An empty segment other than the first or last is two slashes in a
	// row.
	if strings.Contains(p, "//") {
		return true
	}
	for p != "" {
		var seg string
		seg, p, _ = strings.Cut(p, "/")
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	inflight prometheus.Gauge
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slipway_http_requests_total",
			Help: "HTTP requests by method, route pattern and status code.",
		}, []string{"method", "route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "slipway_http_request_duration_seconds",
			Help:    "HTTP request latency by method and route pattern.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"method", "route"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "slipway_http_requests_in_flight",
			Help: "HTTP requests being served.",
		}),
	}
	reg.MustRegister(m.requests, m.latency, m.inflight)
	return m
}

type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
	// pattern is the route ServeMux matched, set by recordRoute.
	pattern string
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.status, w.wrote = http.StatusOK, true
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// statusWriters are reused: like the ResponseWriter it wraps, a handler
// must not keep one after it returns.
var statusWriters = sync.Pool{New: func() any { return new(statusWriter) }}

// statusLabels are the metrics' code labels, made once.
var statusLabels = func() (t [600]string) {
	for code := range t {
		t[code] = strconv.Itoa(code)
	}
	return t
}()

func statusLabel(code int) string {
	if code >= 0 && code < len(statusLabels) {
		return statusLabels[code]
	}
	return strconv.Itoa(code)
}

// observe logs and measures each request by its route pattern, not its raw
// path, so metrics have bounded cardinality. It also turns a panic into a
// logged 500 instead of a dropped connection.
func observe(log *slog.Logger, m *metrics, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := statusWriters.Get().(*statusWriter)
		*sw = statusWriter{ResponseWriter: w, status: http.StatusOK}
		m.inflight.Inc()
		defer func() {
			m.inflight.Dec()
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				log.Error("panic serving request", "method", r.Method, "path", r.URL.Path, "panic", p)
				if !sw.wrote {
					mlflow.WriteError(sw, errs.New(errs.Internal, "internal error"))
				}
			}
			route := sw.pattern
			if route == "" {
				route = "unmatched"
			} else if _, after, ok := strings.Cut(route, " "); ok {
				route = after
			}
			elapsed := time.Since(start)
			m.requests.WithLabelValues(r.Method, route, statusLabel(sw.status)).Inc()
			m.latency.WithLabelValues(r.Method, route).Observe(elapsed.Seconds())
			level := slog.LevelDebug
			if sw.status >= 500 {
				level = slog.LevelError
			}
			if log.Enabled(r.Context(), level) { // building the arguments allocates
				log.Log(r.Context(), level, "request", "method", r.Method, "path", r.URL.Path, "status", sw.status, "duration_ms", float64(elapsed.Microseconds())/1000)
			}
			*sw = statusWriter{}
			statusWriters.Put(sw)
		}()
		next.ServeHTTP(sw, r)
	})
}

// recordRoute passes the pattern ServeMux matched back out to observe,
// through observe's statusWriter: the request observe holds is not the one
// the mux sees once middleware has derived a new context.
func recordRoute(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(w, r)
		for {
			if sw, ok := w.(*statusWriter); ok {
				sw.pattern = r.Pattern
				return
			}
			u, ok := w.(interface{ Unwrap() http.ResponseWriter })
			if !ok {
				return
			}
			w = u.Unwrap()
		}
	})
}
