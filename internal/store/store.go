// Package store opens Slipway's metadata database (SQLite by default,
// PostgreSQL at scale), applies the embedded migrations and gives domain
// packages two ways to write: Tx for a plain transaction and Batch for writes
// that are grouped with other callers' into one commit.
//
// Domain packages own their SQL. They write it once, with ? placeholders, in
// the subset both dialects share; Q rewrites placeholders for PostgreSQL.
package store

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	_ "modernc.org/sqlite"             // registers the "sqlite" driver
)

// Dialect names the SQL engine behind a DB.
type Dialect int

const (
	SQLite Dialect = iota
	Postgres
)

func (d Dialect) String() string {
	if d == Postgres {
		return "postgres"
	}
	return "sqlite"
}

// DB is the metadata database. Read is safe for concurrent queries; writes go
// through Tx or Batch so that SQLite only ever has one writer and never
// answers "database is locked".
type DB struct {
	Dialect Dialect
	Read    *sql.DB
	write   *sql.DB
	queries sync.Map // query text -> rebound text, for PostgreSQL
	batcher *batcher
}

// Open connects to dsn: a postgres:// or postgresql:// URL, or a path to a
// SQLite file (an optional sqlite:// prefix is accepted). Migrations are
// applied before Open returns.
func Open(ctx context.Context, dsn string) (*DB, error) {
	var db *DB
	var err error
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		db, err = openPostgres(dsn)
	default:
		db, err = openSQLite(strings.TrimPrefix(dsn, "sqlite://"))
	}
	if err != nil {
		return nil, err
	}
	if err := db.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	db.batcher = newBatcher(db)
	return db, nil
}

func openSQLite(path string) (*DB, error) {
	if path == "" {
		return nil, fmt.Errorf("store: empty SQLite path")
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("store: create %s: %w", dir, err)
		}
	}
	// synchronous(FULL) makes every commit durable; group commit in Batch
	// keeps that affordable. case_sensitive_like matches MLflow's LIKE, which
	// is case-sensitive (ILIKE is the insensitive one). temp_store(MEMORY)
	// keeps savepoint sub-journals off disk.
	pragmas := "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)" +
		"&_pragma=synchronous(FULL)&_pragma=case_sensitive_like(1)&_pragma=temp_store(MEMORY)&_txlock=immediate"
	// The writer's page cache must hold a whole group's dirty pages (64 MiB),
	// or SQLite spills them mid-transaction and reads them back; a larger
	// WAL between checkpoints (about 40 MB) keeps checkpoints out of most
	// commits. Measured in docs/benchmarks.md.
	write, err := sql.Open("sqlite", "file:"+path+pragmas+"&_pragma=cache_size(-65536)&_pragma=wal_autocheckpoint(10000)")
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	// Touch the writer first so the WAL switch happens before readers open.
	if err := write.Ping(); err != nil {
		write.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	// Readers map the database file (256 MiB of it) rather than copy pages
	// into their own caches: a search walking an index reads pages all over
	// the file, and with only a 16 MiB cache each miss was a read(2). The
	// page of 1,000 runs' id query went from 52 to 29 ms. Pages still in
	// the WAL are read as before, and a reader that finds the database
	// changed drops its map as it drops its cache, so the first search
	// after a write faults its pages in again (docs/benchmarks.md,
	// "search-runs: runs kept in memory").
	read, err := sql.Open("sqlite", "file:"+path+pragmas+"&_pragma=query_only(1)&_pragma=cache_size(-16384)&_pragma=mmap_size(268435456)")
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	read.SetMaxOpenConns(8)
	read.SetMaxIdleConns(8)
	read.SetConnMaxLifetime(0)
	return &DB{Dialect: SQLite, Read: read, write: write}, nil
}

func openPostgres(dsn string) (*DB, error) {
	pool, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open postgres: %w", err)
	}
	pool.SetMaxOpenConns(16)
	pool.SetMaxIdleConns(16)
	if err := pool.Ping(); err != nil {
		pool.Close()
		return nil, fmt.Errorf("store: connect postgres: %w", err)
	}
	return &DB{Dialect: Postgres, Read: pool, write: pool}, nil
}

// Close waits for queued batch writes to commit, then closes connections.
func (db *DB) Close() error {
	if db.batcher != nil {
		db.batcher.close()
	}
	err := db.write.Close()
	if db.Read != db.write {
		if rerr := db.Read.Close(); err == nil {
			err = rerr
		}
	}
	return err
}

// Q returns query with ? placeholders rewritten for the dialect. Queries are
// written in code, so the rewrite is cached per distinct text.
func (db *DB) Q(query string) string {
	if db.Dialect != Postgres {
		return query
	}
	if q, ok := db.queries.Load(query); ok {
		return q.(string)
	}
	q := Rebind(query)
	db.queries.Store(query, q)
	return q
}

// Rebind rewrites ? placeholders to $1, $2, ... skipping quoted text.
func Rebind(query string) string {
	var b strings.Builder
	b.Grow(len(query) + 8)
	n := 0
	var quote byte
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '?':
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// EachRow runs a read query and calls fn for every row; an error from fn
// stops the walk and is returned.
func (db *DB) EachRow(ctx context.Context, query string, args []any, fn func(*sql.Rows) error) error {
	rows, err := db.Read.QueryContext(ctx, db.Q(query), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// IsUniqueViolation recognises a unique or primary-key constraint failure
// on either dialect, so domain code can answer "already exists" without
// importing driver packages.
func IsUniqueViolation(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "UNIQUE constraint failed") || strings.Contains(msg, "PRIMARY KEY constraint failed") ||
		strings.Contains(msg, "SQLSTATE 23505")
}

// statsTables are the tables whose planner statistics decide search plans:
// right after a bulk load PostgreSQL estimated 1 run where there were
// 10,000 and chose nested loops (docs/benchmarks.md). On the registry's
// tables it estimated 1 model where a tag matched 487, and took 4x longer.
const statsTables = "runs, latest_metrics, params, tags, metric_batches, metric_segments, experiments, " +
	"registered_models, registered_model_tags, model_versions, model_version_tags, registered_model_aliases"

// Optimize refreshes the query planner's statistics: ANALYZE of the tracking
// and registry tables on PostgreSQL (it samples, so it stays cheap on large tables), and
// PRAGMA optimize on SQLite, which analyzes only the tables whose statistics
// are missing or stale, within SQLite's own analysis limit. On SQLite it
// runs on the writer, since it may write sqlite_stat1, so it waits for the
// current batch to commit.
func (db *DB) Optimize(ctx context.Context) error {
	if db.Dialect == Postgres {
		_, err := db.write.ExecContext(ctx, "ANALYZE "+statsTables)
		return err
	}
	_, err := db.write.ExecContext(ctx, "PRAGMA optimize")
	return err
}

// Checkpoint copies what SQLite's write-ahead log holds into the database
// file without waiting for readers (a passive checkpoint), on the writer.
// Writers that add much in a steady stream call it now and then, so that
// the log is copied in small steps instead of in one burst when it reaches
// wal_autocheckpoint. On PostgreSQL it does nothing.
func (db *DB) Checkpoint(ctx context.Context) error {
	if db.Dialect == Postgres {
		return nil
	}
	_, err := db.write.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)")
	return err
}

// Tx runs fn in its own write transaction and commits when fn returns nil.
func (db *DB) Tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// InsertInto starts an INSERT statement that runs inside Batch or Tx. On
// SQLite it is INSERT OR FAIL: a failing row then stops the statement
// without undoing the rows before it, which is safe because the failure
// fails the whole job and Batch (or Tx) undoes all of it; in return SQLite
// need not copy each page a multi-row statement first touches into a
// statement journal, which took a tenth of the writer's time in a
// 500-point log-batch (docs/benchmarks.md). An upsert clause still applies.
func (db *DB) InsertInto(table string) string {
	if db.Dialect == SQLite {
		return "INSERT OR FAIL INTO " + table
	}
	return "INSERT INTO " + table
}

// Batch runs fn in a transaction shared with other concurrent Batch callers.
// If fn fails only its own writes are undone. Batch returns after the shared
// transaction has committed, so an acknowledged write is durable.
//
// fn may run more than once (see batcher.commit): it must have no effects
// outside tx, such as blob-store writes, and must reset whatever it captures.
func (db *DB) Batch(ctx context.Context, fn func(*sql.Tx) error) error {
	return db.batcher.do(ctx, fn)
}
