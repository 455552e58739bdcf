package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/slipwayml/slipway/internal/server"
	"github.com/slipwayml/slipway/internal/store" // registers the sqlite and pgx drivers
)

// backend is where a benchmark's databases live: SQLite files under a temp
// folder, or fresh schemas in one PostgreSQL database.
type backend struct {
	pgURL   string // empty for SQLite
	workdir string // temp folder for SQLite files and artifacts
	keep    bool
	cleanup []func()
}

func (b *backend) name() string {
	if b.pgURL != "" {
		return "postgres"
	}
	return "sqlite"
}

// database is one fresh metadata database.
type database struct {
	DSN     string // what store.Open and the server take
	DataDir string // folder for artifacts (and the SQLite file)
	Schema  string // PostgreSQL schema, empty for SQLite
	dialect string
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// fresh makes a new empty database: a new folder (and SQLite file), or a new
// PostgreSQL schema reached through search_path in the DSN. Both are removed
// by close unless -keep is set.
func (b *backend) fresh(ctx context.Context, label string) (database, error) {
	if b.pgURL == "" {
		return b.freshSQLite(label)
	}
	dir, err := os.MkdirTemp(b.workdir, label+"-")
	if err != nil {
		return database{}, err
	}
	schema := "trackbench_" + strings.ReplaceAll(label, "-", "_") + "_" + randHex(4)
	admin, err := sql.Open("pgx", b.pgURL)
	if err != nil {
		return database{}, err
	}
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		return database{}, fmt.Errorf("create schema %s: %w", schema, err)
	}
	if !b.keep {
		b.cleanup = append(b.cleanup, func() {
			admin, err := sql.Open("pgx", b.pgURL)
			if err != nil {
				return
			}
			defer admin.Close()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if _, err := admin.ExecContext(ctx, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
				logf("drop schema %s: %v", schema, err)
			}
		})
	}
	u, err := url.Parse(b.pgURL)
	if err != nil {
		return database{}, err
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return database{DSN: u.String(), DataDir: dir, Schema: schema, dialect: "postgres"}, nil
}

// freshSQLite makes a new SQLite database whatever the backend.
func (b *backend) freshSQLite(label string) (database, error) {
	dir, err := os.MkdirTemp(b.workdir, label+"-")
	if err != nil {
		return database{}, err
	}
	return database{DSN: filepath.Join(dir, "slipway.db"), DataDir: dir, dialect: "sqlite"}, nil
}

func (b *backend) close() {
	for i := len(b.cleanup) - 1; i >= 0; i-- {
		b.cleanup[i]()
	}
	b.cleanup = nil
	if !b.keep {
		os.RemoveAll(b.workdir)
	} else {
		logf("kept %s", b.workdir)
	}
}

// sqlDB opens the database for direct reads (verification, stand-ins).
func (d database) sqlDB() (*sql.DB, error) {
	if d.dialect == "postgres" {
		return sql.Open("pgx", d.DSN)
	}
	return sql.Open("sqlite", "file:"+d.DSN+"?_pragma=busy_timeout(10000)")
}

// createSchema applies Slipway's own migrations to d, so a stand-in writes
// into exactly the tables the server would.
func (d database) createSchema(ctx context.Context) error {
	db, err := store.Open(ctx, d.DSN)
	if err != nil {
		return err
	}
	return db.Close()
}

// instance is a Slipway server running in this process.
type instance struct {
	Base   string // http://127.0.0.1:port
	cancel context.CancelFunc
	done   chan error
}

// startServer runs the real server (server.Run, the same function
// `slipway server` calls) on a loopback port chosen by the kernel.
func startServer(ctx context.Context, d database) (*instance, error) {
	cfg := server.Defaults()
	cfg.Host = "127.0.0.1"
	cfg.Port = 0
	cfg.DataDir = d.DataDir
	cfg.DB = d.DSN
	cfg.LogLevel = "warn"
	cfg.ShutdownGrace = time.Minute
	// Warnings and errors only: a per-request log line would be part of
	// what is measured.
	log := server.NewLogger(os.Stderr, cfg)
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	ready := make(chan string, 1)
	in := &instance{cancel: cancel, done: make(chan error, 1)}
	go func() { in.done <- server.Run(sctx, cfg, log, ready) }()
	select {
	case addr := <-ready:
		in.Base = "http://" + addr
		return in, nil
	case err := <-in.done:
		cancel()
		if err == nil {
			err = fmt.Errorf("server exited before listening")
		}
		return nil, err
	case <-time.After(2 * time.Minute):
		cancel()
		return nil, fmt.Errorf("server did not start within 2 minutes")
	}
}

// stop shuts the server down gracefully: in-flight requests finish, queued
// batch writes commit and the database is closed.
func (in *instance) stop() error {
	in.cancel()
	return <-in.done
}
