// Package server wires Slipway together: configuration to stores, stores to
// domain services, services to the HTTP API, and the lifecycle of all of it.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/slipwayml/slipway/internal/api"
	"github.com/slipwayml/slipway/internal/api/inference"
	"github.com/slipwayml/slipway/internal/api/mlflow"
	"github.com/slipwayml/slipway/internal/audit"
	"github.com/slipwayml/slipway/internal/auth"
	"github.com/slipwayml/slipway/internal/blob"
	"github.com/slipwayml/slipway/internal/datasets"
	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/http1"
	"github.com/slipwayml/slipway/internal/lineage"
	"github.com/slipwayml/slipway/internal/pipelines/runs"
	"github.com/slipwayml/slipway/internal/pipelines/triggers"
	"github.com/slipwayml/slipway/internal/registry"
	"github.com/slipwayml/slipway/internal/serving"
	"github.com/slipwayml/slipway/internal/store"
	"github.com/slipwayml/slipway/internal/tracking"
)

// Version is set at build time with -ldflags "-X ...server.Version=...".
var Version = "dev"

// App is an opened Slipway: stores and services, without a listener.
type App struct {
	DB        *store.DB
	Artifacts *blob.Store
	Tracking  *tracking.Service
	Registry  *registry.Service
	Auth      *auth.Service
	Datasets  *datasets.Service
	Audit     *audit.Log
	Lineage   *lineage.Service
	Pipelines *runs.Service
	Triggers  *triggers.Service
	Serving   *serving.Service
}

// Open opens the stores named by cfg and applies migrations.
func Open(ctx context.Context, cfg Config) (*App, error) {
	db, err := store.Open(ctx, cfg.DBLocation())
	if err != nil {
		return nil, err
	}
	artifacts, err := blob.Open(ctx, cfg.ArtifactLocation(), blob.Options{Endpoint: cfg.S3Endpoint, Region: cfg.S3Region})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("artifact store: %w", err)
	}
	tr, err := tracking.New(ctx, db)
	if err != nil {
		artifacts.Close()
		db.Close()
		return nil, err
	}
	tr.ValidateLocation = func(loc string) (string, error) {
		key, err := blob.ResolveLocation(loc)
		if err != nil {
			return "", err
		}
		if dir, ok := mlflow.ReservedDir(key); ok {
			return "", errs.Invalid("invalid artifact location %q: %s/ is reserved for Slipway's registered models and data versions", loc, dir)
		}
		return blob.ArtifactScheme + ":/" + key, nil
	}
	app := &App{DB: db, Artifacts: artifacts, Tracking: tr, Registry: registry.New(db, artifacts, tr), Auth: auth.New(db),
		Datasets: datasets.New(db, artifacts), Audit: audit.New(db)}
	app.Lineage = lineage.New(db, tr, app.Registry, app.Datasets)
	app.Pipelines = runs.New(db, artifacts, tr, app.Datasets, app.Registry, localDir(cfg, "pipelines"))
	app.Triggers = triggers.New(db, app.Pipelines, app.Datasets)
	app.Serving = serving.New(db, app.Registry, app.Audit, localDir(cfg, "serving"))
	return app, nil
}

// localDir is a local working folder (pipeline run logs and inputs, the
// files of served models): under the data dir, or the temp dir when the
// database and the artifacts are both elsewhere.
func localDir(cfg Config, name string) string {
	dir := cfg.DataDir
	if dir == "" {
		dir = os.TempDir()
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return filepath.Join(dir, name)
}

// Close closes the stores, after pending writes have committed.
func (a *App) Close() error {
	return errors.Join(a.Artifacts.Close(), a.DB.Close())
}

// Multipart uploads nobody completes or aborts (a client that died) would
// keep their parts forever; they are removed once a day has passed.
const (
	uploadMaxAge     = 24 * time.Hour
	uploadPruneEvery = time.Hour
)

func pruneUploads(ctx context.Context, artifacts *blob.Store, log *slog.Logger) {
	t := time.NewTicker(uploadPruneEvery)
	defer t.Stop()
	for {
		n, err := artifacts.PruneUploads(ctx, uploadMaxAge)
		if err != nil && ctx.Err() == nil {
			log.Warn("pruning abandoned multipart uploads", "err", err)
		} else if n > 0 {
			log.Info("pruned abandoned multipart uploads", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// The planner's statistics go stale as runs and metrics are logged (and are
// missing on a new database), which made PostgreSQL pick plans several
// times slower; refreshing them is cheap, so it runs at start-up and then
// periodically.
var optimizeEvery = 10 * time.Minute

func optimizeDB(ctx context.Context, db *store.DB, log *slog.Logger) {
	t := time.NewTicker(optimizeEvery)
	defer t.Stop()
	for {
		if err := db.Optimize(ctx); err != nil && ctx.Err() == nil {
			log.Warn("refreshing query planner statistics", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// selfURL is how processes on this machine (pipeline steps) reach the
// server: a wildcard bind address is reached through loopback.
func selfURL(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://" + addr.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// NewLogger builds the server's structured logger.
func NewLogger(w io.Writer, cfg Config) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// Run serves until ctx ends, then shuts down gracefully: it stops accepting
// connections, lets in-flight requests finish (their writes commit), and
// closes the stores. ready, if not nil, receives the bound address.
func Run(ctx context.Context, cfg Config, log *slog.Logger, ready chan<- string) error {
	app, err := Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer app.Close()
	app.Registry.Log = log

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	handler := api.New(api.Config{
		Tracking:     app.Tracking,
		Artifacts:    app.Artifacts,
		Models:       app.Registry,
		Auth:         app.Auth,
		Datasets:     app.Datasets,
		Audit:        app.Audit,
		Lineage:      app.Lineage,
		Pipelines:    app.Pipelines,
		Triggers:     app.Triggers,
		Deployments:  app.Serving,
		RequireAuth:  cfg.RequireAuth(),
		MaxBodyBytes: cfg.MaxBodyBytes,
		Log:          log,
		Registry:     reg,
		Version:      Version,
		Ready: func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			return app.DB.Read.PingContext(ctx)
		},
	})

	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)))
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if cfg.RequireAuth() {
		if tokens, err := app.Auth.List(ctx); err == nil && len(tokens) == 0 {
			log.Warn("authentication is required but no API token exists; create one with `slipway tokens create NAME`")
		}
	} else if !cfg.Loopback() {
		log.Warn("serving a non-loopback address without authentication (--insecure-no-auth)")
	}
	log.Info("slipway server listening", "addr", "http://"+ln.Addr().String(), "version", Version,
		"db", app.DB.Dialect.String(), "artifacts", app.Artifacts.Location(), "auth", cfg.RequireAuth())
	if ready != nil {
		ready <- ln.Addr().String()
	}

	// Background work stops (cancel, then Wait: defers run in reverse) before
	// the stores close.
	var workers sync.WaitGroup
	defer workers.Wait()
	bg, cancel := context.WithCancel(ctx)
	defer cancel()
	workers.Add(1)
	go func() {
		defer workers.Done()
		pruneUploads(bg, app.Artifacts, log)
	}()
	workers.Add(1)
	go func() {
		defer workers.Done()
		optimizeDB(bg, app.DB, log)
	}()
	workers.Add(1)
	go func() {
		defer workers.Done()
		recoverPending(bg, app.Registry, log)
	}()
	app.Pipelines.Log = log
	app.Pipelines.TrackingURL = selfURL(ln.Addr())
	if cfg.RequireAuth() {
		app.Pipelines.Auth = app.Auth
	}
	workers.Add(1)
	go func() {
		defer workers.Done()
		app.Pipelines.Work(bg)
	}()
	app.Triggers.Log = log
	app.Serving.Log = log
	workers.Add(1)
	go func() {
		defer workers.Done()
		app.Serving.Run(bg)
	}()
	workers.Add(1)
	go func() {
		defer workers.Done()
		app.Triggers.Run(bg)
	}()

	// Inference requests are served on http1's connection loop; every
	// other connection is handed to srv.
	front := &http1.Server{Handler: handler, Fast: inference.DataPlane, Fallback: srv,
		IdleTimeout: srv.IdleTimeout, ReadHeaderTimeout: srv.ReadHeaderTimeout, Log: log}
	errc := make(chan error, 1)
	go func() { errc <- front.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down", "grace", cfg.ShutdownGrace)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
	defer cancel()
	if err := front.Shutdown(sctx); err != nil {
		log.Warn("shutdown did not finish in time", "err", err)
	}
	return nil
}
