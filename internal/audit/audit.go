// Package audit is the append-only record of every registry and data
// change: who made it, when, what it was, and the state before and after.
//
// Domain packages call Record inside the transaction that makes the change,
// so the change and its record commit together or not at all. The table
// refuses UPDATE and DELETE in the database itself (migration 0005).
package audit

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slipwayml/slipway/internal/auth"
	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/store"
)

// Anonymous is the actor of a change made without a token, which a server
// without required authentication allows. It is recorded as such rather than
// left blank so that the log says plainly that nobody was identified.
const Anonymous = "anonymous"

// Paging limits of List.
const (
	DefaultListResults = 100
	MaxListResults     = 1000
)

// Log reads and writes the audit log.
type Log struct {
	db *store.DB
}

// New returns the audit log of db.
func New(db *store.DB) *Log { return &Log{db: db} }

// Change is one change, as the domain package that makes it describes it.
// Before and After are encoded as JSON; nil is recorded as null (nothing
// existed before a create, nothing after a delete).
type Change struct {
	// Time is in milliseconds since the epoch; zero means now. Domain
	// packages pass their own clock so that tests can order changes.
	Time   int64
	Action string
	Target Target
	Before any
	After  any
}

// Entry is one recorded change.
type Entry struct {
	ID     int64
	Time   int64
	Actor  string
	Action string
	Target Target
	Before json.RawMessage
	After  json.RawMessage
}

// Actor is who ctx acts for: the authenticated user, else Anonymous.
func Actor(ctx context.Context) string {
	if p, ok := auth.PrincipalFrom(ctx); ok && p.Username != "" {
		return p.Username
	}
	return Anonymous
}

// Record writes c in tx, the transaction of the change itself. A change
// whose before and after are equal changed nothing and is not recorded:
// the log lists changes, not requests.
func (l *Log) Record(ctx context.Context, tx *sql.Tx, c Change) error {
	before, err := encode(c.Before)
	if err != nil {
		return err
	}
	after, err := encode(c.After)
	if err != nil {
		return err
	}
	if bytes.Equal(before, after) {
		return nil
	}
	t := c.Time
	if t == 0 {
		t = time.Now().UnixMilli()
	}
	_, err = tx.ExecContext(ctx, l.db.Q(`INSERT INTO audit_log
		(event_time, actor, action, target_type, target_name, target_version, before_json, after_json)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
		t, Actor(ctx), c.Action, c.Target.Type, c.Target.Name, c.Target.Version, nullable(before), nullable(after))
	return err
}

// encode returns v as JSON, or nil for a nil value (typed nil pointers and
// maps included, which encode as null). HTML escaping is off so that a
// policy's ">=" reads as itself wherever the record is shown.
func encode(v any) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, errs.Wrap(err, "encoding an audit record")
	}
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if string(b) == "null" {
		return nil, nil
	}
	return b, nil
}

func nullable(b []byte) any {
	if b == nil {
		return nil
	}
	return string(b)
}

// Filter selects entries. Zero fields select everything.
type Filter struct {
	// Target selects the entries about one model or dataset (all its
	// versions included) or, with Version set, about one version.
	Target *Target
	// Action selects actions that start with it, so "registered_model."
	// selects every change of a model's own fields.
	Action string
	Actor  string
	// Since and Until bound the time, in milliseconds: Since <= t < Until.
	Since, Until int64
	// PageToken continues a listing from where the last page ended.
	PageToken  string
	MaxResults int
}

// List returns entries newest first and the token of the next page ("" at
// the end).
func (l *Log) List(ctx context.Context, f Filter) ([]Entry, string, error) {
	limit := f.MaxResults
	switch {
	case limit == 0:
		limit = DefaultListResults
	case limit < 0 || limit > MaxListResults:
		return nil, "", errs.Invalid("max_results %d: must be from 1 to %d", limit, MaxListResults)
	}
	var where []string
	var args []any
	if f.PageToken != "" {
		id, err := strconv.ParseInt(f.PageToken, 10, 64)
		if err != nil || id <= 0 {
			return nil, "", errs.Invalid("page_token %q: not a token this server issued", f.PageToken)
		}
		where, args = append(where, "id < ?"), append(args, id)
	}
	if t := f.Target; t != nil {
		where, args = append(where, "target_type = ? AND target_name = ?"), append(args, t.Type, t.Name)
		if t.Version != 0 {
			where, args = append(where, "target_version = ?"), append(args, t.Version)
		}
	}
	if f.Action != "" {
		// substr rather than LIKE: actions hold '_', a LIKE wildcard.
		where, args = append(where, "substr(action, 1, ?) = ?"), append(args, utf8.RuneCountInString(f.Action), f.Action)
	}
	if f.Actor != "" {
		where, args = append(where, "actor = ?"), append(args, f.Actor)
	}
	if f.Since != 0 {
		where, args = append(where, "event_time >= ?"), append(args, f.Since)
	}
	if f.Until != 0 {
		where, args = append(where, "event_time < ?"), append(args, f.Until)
	}
	q := `SELECT id, event_time, actor, action, target_type, target_name, target_version, before_json, after_json FROM audit_log`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	q += ` ORDER BY id DESC LIMIT ?`
	args = append(args, limit+1)
	out := []Entry{}
	err := l.db.EachRow(ctx, q, args, func(rows *sql.Rows) error {
		var e Entry
		var before, after sql.NullString
		if err := rows.Scan(&e.ID, &e.Time, &e.Actor, &e.Action, &e.Target.Type, &e.Target.Name, &e.Target.Version, &before, &after); err != nil {
			return err
		}
		if before.Valid {
			e.Before = json.RawMessage(before.String)
		}
		if after.Valid {
			e.After = json.RawMessage(after.String)
		}
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, "", errs.Wrap(err, "reading the audit log")
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = strconv.FormatInt(out[limit-1].ID, 10)
	}
	return out, next, nil
}
