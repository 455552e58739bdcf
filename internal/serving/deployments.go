// Package serving runs deployments: named endpoints whose traffic is split
// over model versions taken from the registry, never from files. A change
// (create, canary, promote, rollback, shadow) loads every model it names
// before it is recorded, so a model the runtimes cannot serve is refused
// at deploy time, and then swaps the live routing table atomically, so no
// request is dropped.
package serving

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/slipwayml/slipway/internal/audit"
	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/registry"
	"github.com/slipwayml/slipway/internal/store"
)

// Route roles.
const (
	RoleStable = "stable"
	RoleCanary = "canary"
)

// Route sends Weight percent of a deployment's traffic to Model, a
// registry reference: models:/NAME/VERSION or models:/NAME@ALIAS. A route
// to an alias follows it: when the alias moves, the route serves the new
// version.
type Route struct {
	Model  string `json:"model"`
	Weight int    `json:"weight"`
	Role   string `json:"role"`
}

// Shadow mirrors Percent of requests to Model; its answers are logged,
// never returned.
type Shadow struct {
	Model   string `json:"model"`
	Percent int    `json:"percent"`
}

// Split is how a deployment's traffic is divided.
type Split struct {
	Routes []Route `json:"routes"`
	Shadow *Shadow `json:"shadow,omitempty"`
}

// Deployment is a named endpoint and its split.
type Deployment struct {
	Name        string `json:"name"`
	Split       Split  `json:"split"`
	Revision    int64  `json:"revision"`
	CreatedTime int64  `json:"created_time"`
	UpdatedTime int64  `json:"updated_time"`
	UpdatedBy   string `json:"updated_by,omitempty"`
	// Serving is what each route (and the shadow, last) serves now.
	Serving []Serving `json:"serving,omitempty"`
}

// Serving is the model version behind one route right now.
type Serving struct {
	Model    string `json:"model"` // the route's reference
	Version  string `json:"version"`
	Platform string `json:"platform"`
	Weight   int    `json:"weight"`
	Role     string `json:"role"`
}

// Revision is one recorded change of a deployment.
type Revision struct {
	Revision    int64  `json:"revision"`
	Split       Split  `json:"split"`
	Action      string `json:"action"`
	CreatedTime int64  `json:"created_time"`
	CreatedBy   string `json:"created_by,omitempty"`
}

// Service keeps deployments and serves them.
type Service struct {
	db     *store.DB
	models *registry.Service
	audit  *audit.Log
	// Dir holds the files of loaded model versions.
	Dir string
	Log *slog.Logger
	Now func() time.Time

	loader      *loader
	plog        *PredictionLog
	stats       statsTable
	bases       rolloutBases
	shadowSlots chan struct{} // bounds shadow scoring in flight
	mu          sync.Mutex
	live        map[string]*liveDeployment
	onUnload    []func(*Loaded)
}

// New returns a service; dir is where model versions are exported to be
// loaded.
func New(db *store.DB, models *registry.Service, log *audit.Log, dir string) *Service {
	s := &Service{db: db, models: models, audit: log, Dir: dir, Log: slog.Default(), Now: time.Now,
		live: map[string]*liveDeployment{}}
	s.loader = &loader{s: s, loaded: map[string]*Loaded{}, loading: map[string]*loadCall{}, unused: map[string]time.Time{}}
	s.plog = newPredictionLog(s)
	s.shadowSlots = make(chan struct{}, 64)
	return s
}

func (s *Service) nowMillis() int64 { return s.Now().UnixMilli() }

var deploymentName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// PredictionLog is the log of what deployments answered.
func (s *Service) PredictionLog() *PredictionLog { return s.plog }

// ValidateName checks a deployment name: it is a path segment of the
// inference URLs.
func ValidateName(name string) error {
	if !deploymentName.MatchString(name) {
		return errs.Invalid("deployment name %q: must be 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit", name)
	}
	return nil
}

func notFound(name string) error {
	return errs.NotFoundf("deployment %q does not exist (slipway deploy list shows them)", name)
}

// ModelRef is a parsed registry reference.
type ModelRef struct {
	Name    string
	Version int64 // 0 when Alias is set
	Alias   string
}

func (r ModelRef) String() string {
	if r.Alias != "" {
		return "models:/" + r.Name + "@" + r.Alias
	}
	return "models:/" + r.Name + "/" + strconv.FormatInt(r.Version, 10)
}

// ParseModelRef reads models:/NAME/VERSION or models:/NAME@ALIAS; field
// names the request field in errors.
func ParseModelRef(field, s string) (ModelRef, error) {
	rest, ok := strings.CutPrefix(s, "models:/")
	bad := func(why string) (ModelRef, error) {
		return ModelRef{}, errs.Invalid("%s %q: %s; deployments name a registered version, models:/NAME/VERSION or models:/NAME@ALIAS", field, s, why)
	}
	if !ok || rest == "" {
		return bad("not a registry reference")
	}
	if name, alias, ok := strings.Cut(rest, "@"); ok {
		if name == "" || alias == "" || strings.Contains(alias, "/") {
			return bad("empty name or alias")
		}
		return ModelRef{Name: name, Alias: alias}, nil
	}
	i := strings.LastIndexByte(rest, '/')
	if i <= 0 {
		return bad("no version")
	}
	v, err := strconv.ParseInt(rest[i+1:], 10, 64)
	if err != nil || v < 1 {
		return bad("the version must be a number from 1")
	}
	return ModelRef{Name: rest[:i], Version: v}, nil
}

// check validates a split: references, weights that add up to 100, roles.
func (sp Split) check() error {
	if len(sp.Routes) == 0 {
		return errs.Invalid("split.routes: a deployment needs at least one route")
	}
	if len(sp.Routes) > 10 {
		return errs.Invalid("split.routes: %d routes; at most 10", len(sp.Routes))
	}
	total := 0
	for i, r := range sp.Routes {
		if _, err := ParseModelRef(fmt.Sprintf("split.routes[%d].model", i), r.Model); err != nil {
			return err
		}
		if r.Weight < 0 || r.Weight > 100 {
			return errs.Invalid("split.routes[%d].weight: %d must be between 0 and 100", i, r.Weight)
		}
		if r.Role != RoleStable && r.Role != RoleCanary {
			return errs.Invalid("split.routes[%d].role: %q must be %s or %s", i, r.Role, RoleStable, RoleCanary)
		}
		total += r.Weight
	}
	if total != 100 {
		return errs.Invalid("split.routes: weights add up to %d; they must add up to 100", total)
	}
	if sh := sp.Shadow; sh != nil {
		if _, err := ParseModelRef("split.shadow.model", sh.Model); err != nil {
			return err
		}
		if sh.Percent < 1 || sh.Percent > 100 {
			return errs.Invalid("split.shadow.percent: %d must be between 1 and 100", sh.Percent)
		}
	}
	return nil
}

// Create makes a deployment that sends all traffic to model.
func (s *Service) Create(ctx context.Context, name, model string) (Deployment, error) {
	if err := ValidateName(name); err != nil {
		return Deployment{}, err
	}
	split := Split{Routes: []Route{{Model: model, Weight: 100, Role: RoleStable}}}
	return s.apply(ctx, name, "create", func(cur *Deployment) (Split, error) {
		if cur != nil {
			return Split{}, errs.New(errs.AlreadyExists, "deployment %q already exists (slipway deploy canary or promote change it)", name)
		}
		return split, nil
	})
}

// Canary sends percent of the traffic to model and the rest to the
// stable route, replacing any earlier canary.
func (s *Service) Canary(ctx context.Context, name, model string, percent int) (Deployment, error) {
	if percent < 1 || percent > 99 {
		return Deployment{}, errs.Invalid("percent: %d must be between 1 and 99 (promote sends it all)", percent)
	}
	return s.apply(ctx, name, fmt.Sprintf("canary %s at %d%%", model, percent), func(cur *Deployment) (Split, error) {
		return cur.withCanary(model, percent)
	})
}

// withCanary is the deployment's split with percent of the traffic sent
// to model and the rest to its stable route.
func (d *Deployment) withCanary(model string, percent int) (Split, error) {
	stable, ok := d.stable()
	if !ok {
		return Split{}, errs.New(errs.FailedPrecondition, "deployment %q has no stable route", d.Name)
	}
	next := d.Split
	next.Routes = []Route{{Model: stable.Model, Weight: 100 - percent, Role: RoleStable}, {Model: model, Weight: percent, Role: RoleCanary}}
	return next, nil
}

// Promote makes the canary the stable route with all the traffic.
func (s *Service) Promote(ctx context.Context, name string) (Deployment, error) {
	return s.apply(ctx, name, "promote canary", func(cur *Deployment) (Split, error) {
		for _, r := range cur.Split.Routes {
			if r.Role == RoleCanary {
				next := cur.Split
				next.Routes = []Route{{Model: r.Model, Weight: 100, Role: RoleStable}}
				return next, nil
			}
		}
		return Split{}, errs.New(errs.FailedPrecondition, "deployment %q has no canary to promote", name)
	})
}

// SetShadow mirrors percent of the traffic to model; percent 0 stops it.
func (s *Service) SetShadow(ctx context.Context, name, model string, percent int) (Deployment, error) {
	action := fmt.Sprintf("shadow %s at %d%%", model, percent)
	if percent == 0 {
		action = "stop shadow"
	}
	return s.apply(ctx, name, action, func(cur *Deployment) (Split, error) {
		next := cur.Split
		next.Shadow = nil
		if percent != 0 {
			next.Shadow = &Shadow{Model: model, Percent: percent}
		}
		return next, nil
	})
}

// Rollback restores the split the deployment had before its last change.
func (s *Service) Rollback(ctx context.Context, name string) (Deployment, error) {
	return s.apply(ctx, name, "", func(cur *Deployment) (Split, error) {
		if cur.Revision < 2 {
			return Split{}, errs.New(errs.FailedPrecondition, "deployment %q has no earlier revision to roll back to", name)
		}
		rev, err := s.revision(ctx, name, cur.Revision-1)
		return rev.Split, err
	})
}

// SetSplit replaces the split whole (the API's PUT).
func (s *Service) SetSplit(ctx context.Context, name string, split Split) (Deployment, error) {
	return s.apply(ctx, name, "set split", func(cur *Deployment) (Split, error) { return split, nil })
}

// apply computes a deployment's next split from its current one (nil when
// it does not exist), loads every model the split names, records the
// change as a new revision with its audit entry, and swaps the live
// routing table.
func (s *Service) apply(ctx context.Context, name, action string, next func(cur *Deployment) (Split, error)) (Deployment, error) {
	return s.applyWith(ctx, name, action, next, nil)
}

// applyWith is apply with also run in the transaction that records the
// new revision, so what a rollout records about its step commits with it.
func (s *Service) applyWith(ctx context.Context, name, action string, next func(cur *Deployment) (Split, error),
	also func(tx *sql.Tx, revision int64) error) (Deployment, error) {
	cur, err := s.Get(ctx, name)
	var curp *Deployment
	switch {
	case err == nil:
		curp = &cur
	case errs.CodeOf(err) != errs.NotFound:
		return Deployment{}, err
	case action != "create":
		return Deployment{}, err
	}
	split, err := next(curp)
	if err != nil {
		return Deployment{}, err
	}
	if action == "" { // a rollback
		action = fmt.Sprintf("rollback to revision %d", cur.Revision-1)
	}
	if err := split.check(); err != nil {
		return Deployment{}, err
	}
	table, err := s.loader.build(ctx, split)
	if err != nil {
		return Deployment{}, err
	}
	raw, _ := json.Marshal(split)
	now, by := s.nowMillis(), audit.Actor(ctx)
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		var rev int64 = 1
		if curp == nil {
			if _, err := tx.ExecContext(ctx, s.db.Q(`INSERT INTO deployments (name, split, revision, created_time, updated_time, updated_by)
				VALUES (?, ?, 1, ?, ?, ?)`), name, string(raw), now, now, by); err != nil {
				if store.IsUniqueViolation(err) {
					return errs.New(errs.AlreadyExists, "deployment %q already exists", name)
				}
				return err
			}
		} else {
			rev = cur.Revision + 1
			res, err := tx.ExecContext(ctx, s.db.Q(`UPDATE deployments SET split = ?, revision = ?, updated_time = ?, updated_by = ?
				WHERE name = ? AND revision = ?`), string(raw), rev, now, by, name, cur.Revision)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return errs.New(errs.FailedPrecondition, "deployment %q changed meanwhile; try again", name)
			}
		}
		if _, err := tx.ExecContext(ctx, s.db.Q(`INSERT INTO deployment_revisions (name, revision, split, action, created_time, created_by)
			VALUES (?, ?, ?, ?, ?, ?)`), name, rev, string(raw), action, now, by); err != nil {
			return err
		}
		if also != nil {
			if err := also(tx, rev); err != nil {
				return err
			}
		}
		var before any
		if curp != nil {
			before = cur.Split
		}
		return s.audit.Record(ctx, tx, audit.Change{Time: now, Action: "deployment." + strings.Fields(action)[0],
			Target: audit.Deployment(name), Before: before, After: map[string]any{"split": split, "revision": rev, "action": action}})
	})
	if err != nil {
		return Deployment{}, errs.Wrap(err, "recording deployment")
	}
	d, err := s.Get(ctx, name)
	if err != nil {
		return d, err
	}
	table.revision = d.Revision
	s.swap(name, table)
	s.recordServed(ctx, name, table)
	d.Serving = table.serving()
	return d, nil
}

// Delete removes a deployment; it stops answering at once.
func (s *Service) Delete(ctx context.Context, name string) error {
	cur, err := s.Get(ctx, name)
	if err != nil {
		return err
	}
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.db.Q(`DELETE FROM deployments WHERE name = ?`), name); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Change{Time: s.nowMillis(), Action: "deployment.delete", Target: audit.Deployment(name), Before: cur.Split})
	})
	if err != nil {
		return errs.Wrap(err, "deleting deployment")
	}
	s.swap(name, nil)
	return nil
}

func scanDeployment(r interface{ Scan(...any) error }) (Deployment, error) {
	var d Deployment
	var raw string
	if err := r.Scan(&d.Name, &raw, &d.Revision, &d.CreatedTime, &d.UpdatedTime, &d.UpdatedBy); err != nil {
		return d, err
	}
	return d, json.Unmarshal([]byte(raw), &d.Split)
}

const deploymentColumns = `name, split, revision, created_time, updated_time, updated_by`

// Get returns a deployment with what it serves now.
func (s *Service) Get(ctx context.Context, name string) (Deployment, error) {
	d, err := scanDeployment(s.db.Read.QueryRowContext(ctx, s.db.Q(`SELECT `+deploymentColumns+` FROM deployments WHERE name = ?`), name))
	if errors.Is(err, sql.ErrNoRows) {
		return d, notFound(name)
	}
	if err != nil {
		return d, errs.Wrap(err, "reading deployment")
	}
	if t := s.table(name); t != nil {
		d.Serving = t.serving()
	}
	return d, nil
}

// List returns every deployment by name.
func (s *Service) List(ctx context.Context) ([]Deployment, error) {
	var out []Deployment
	err := s.db.EachRow(ctx, `SELECT `+deploymentColumns+` FROM deployments ORDER BY name`, nil, func(rows *sql.Rows) error {
		d, err := scanDeployment(rows)
		if t := s.table(d.Name); t != nil {
			d.Serving = t.serving()
		}
		out = append(out, d)
		return err
	})
	if err != nil {
		return nil, errs.Wrap(err, "listing deployments")
	}
	return out, nil
}

// Revisions returns a deployment's changes, newest first.
func (s *Service) Revisions(ctx context.Context, name string) ([]Revision, error) {
	var out []Revision
	err := s.db.EachRow(ctx, `SELECT revision, split, action, created_time, created_by FROM deployment_revisions
		WHERE name = ? ORDER BY revision DESC`, []any{name}, func(rows *sql.Rows) error {
		var r Revision
		var raw string
		if err := rows.Scan(&r.Revision, &raw, &r.Action, &r.CreatedTime, &r.CreatedBy); err != nil {
			return err
		}
		out = append(out, r)
		return json.Unmarshal([]byte(raw), &out[len(out)-1].Split)
	})
	return out, err
}

func (s *Service) revision(ctx context.Context, name string, rev int64) (Revision, error) {
	var r Revision
	var raw string
	err := s.db.Read.QueryRowContext(ctx, s.db.Q(`SELECT revision, split, action, created_time, created_by FROM deployment_revisions
		WHERE name = ? AND revision = ?`), name, rev).Scan(&r.Revision, &raw, &r.Action, &r.CreatedTime, &r.CreatedBy)
	if err != nil {
		return r, errs.Wrap(err, "reading revision")
	}
	return r, json.Unmarshal([]byte(raw), &r.Split)
}

func (d *Deployment) stable() (Route, bool) {
	for _, r := range d.Split.Routes {
		if r.Role == RoleStable {
			return r, true
		}
	}
	return Route{}, false
}
