package lineage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/slipwayml/slipway/internal/datasets"
	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/registry"
	"github.com/slipwayml/slipway/internal/store"
	"github.com/slipwayml/slipway/internal/tracking"
)

// Well-known run tags MLflow clients set and lineage shows.
const (
	TagGitCommit  = "mlflow.source.git.commit"
	TagSourceName = "mlflow.source.name"
)

// Service answers lineage queries. It reads edges with its own SQL, since
// each spans tables two domains own, and node details through the domain
// services, which own their shape.
type Service struct {
	db       *store.DB
	tracking *tracking.Service
	registry *registry.Service
	datasets *datasets.Service
	// maxNodes is MaxNodes; tests lower it.
	maxNodes int
}

// New returns a Service over the given domains.
func New(db *store.DB, tr *tracking.Service, reg *registry.Service, ds *datasets.Service) *Service {
	return &Service{db: db, tracking: tr, registry: reg, datasets: ds, maxNodes: MaxNodes}
}

// step is a node still to expand, and which way.
type step struct {
	ref Ref
	dir Direction
}

// Graph walks breadth-first from the node q names, at most q.Depth edges
// away and at most MaxNodes nodes, and returns what it reached with each
// node's details. An edge to a node already reached is kept without
// walking on, so shared ancestors appear once and cycles end.
func (s *Service) Graph(ctx context.Context, q Query) (Graph, error) {
	if err := q.check(); err != nil {
		return Graph{}, err
	}
	root, err := s.resolve(ctx, q.Kind, q.ID)
	if err != nil {
		return Graph{}, err
	}
	g := Graph{Root: root, Direction: q.Direction, Depth: q.Depth, Nodes: []Node{{Ref: root}}, Edges: []Edge{}}
	reached := map[Ref]bool{root: true}
	kept := map[Edge]bool{}
	var frontier []step
	if q.Direction != Down {
		frontier = append(frontier, step{root, Up})
	}
	if q.Direction != Up {
		frontier = append(frontier, step{root, Down})
	}
	for depth := 1; depth <= q.Depth && len(frontier) > 0; depth++ {
		links, err := s.expand(ctx, frontier)
		if err != nil {
			return Graph{}, err
		}
		var next []step
		for _, l := range links {
			to := l.far()
			if !reached[to] {
				if len(g.Nodes) == s.maxNodes {
					g.Truncated = true
					continue
				}
				reached[to] = true
				g.Nodes = append(g.Nodes, Node{Ref: to, Depth: depth})
				next = append(next, step{to, l.dir})
			}
			if !kept[l.Edge] {
				kept[l.Edge] = true
				g.Edges = append(g.Edges, l.Edge)
			}
		}
		frontier = next
	}
	if err := s.describe(ctx, g.Nodes); err != nil {
		return Graph{}, err
	}
	return g, nil
}

// link is an edge found while walking in dir.
type link struct {
	Edge
	dir Direction
}

// far is the end of the edge the walk arrives at.
func (l link) far() Ref {
	if l.dir == Up {
		return l.From
	}
	return l.To
}

// expanders find the edges of a batch of nodes of one kind, one way.
var expanders = []struct {
	kind Kind
	dir  Direction
	find func(s *Service, ctx context.Context, ids []string) ([]Edge, error)
}{
	{KindData, Up, (*Service).dataProducers},
	{KindData, Down, (*Service).dataConsumers},
	{KindRun, Down, (*Service).runOutputs},
	{KindRun, Up, (*Service).runInputs},
	{KindRun, Down, (*Service).runModels},
	{KindModel, Up, (*Service).modelOrigins},
	{KindModel, Down, (*Service).modelCopies},
	{KindModel, Down, (*Service).modelDeployments},
	{KindDeployment, Up, (*Service).deploymentModels},
}

// expand returns the edges of every node in frontier, with one query per
// kind and direction (per chunk) rather than per node, in a stable order.
func (s *Service) expand(ctx context.Context, frontier []step) ([]link, error) {
	var out []link
	for _, e := range expanders {
		var ids []string
		for _, st := range frontier {
			if st.ref.Kind == e.kind && st.dir == e.dir {
				ids = append(ids, st.ref.ID)
			}
		}
		if len(ids) == 0 {
			continue
		}
		edges, err := e.find(s, ctx, ids)
		if err != nil {
			return nil, errs.Wrap(err, "reading lineage")
		}
		for _, ed := range edges {
			out = append(out, link{ed, e.dir})
		}
	}
	// Sorted here, not in SQL: the dialects collate text differently.
	slices.SortFunc(out, func(a, b link) int {
		if c := strings.Compare(a.far().String(), b.far().String()); c != 0 {
			return c
		}
		return strings.Compare(a.From.String()+" "+a.To.String(), b.From.String()+" "+b.To.String())
	})
	return out, nil
}

// resolve checks that the node exists and returns its canonical ref:
// data NAME@vN (latest resolved), a model's NAME/VERSION (alias resolved).
func (s *Service) resolve(ctx context.Context, kind Kind, id string) (Ref, error) {
	switch kind {
	case KindData:
		name, n, err := datasets.ParseRef(id)
		if err != nil {
			return Ref{}, errs.Invalid("id %q: %s; a data version is NAME@vN", id, errs.Message(err))
		}
		v, err := s.datasets.Version(ctx, name, n, false)
		if err != nil {
			return Ref{}, err
		}
		return dataRef(v.Name, v.Version), nil
	case KindRun:
		run, err := s.tracking.GetRun(ctx, id)
		if err != nil {
			return Ref{}, err
		}
		return Ref{KindRun, run.Info.RunID}, nil
	case KindDeployment:
		// A deleted deployment keeps its history of served versions.
		var n int
		err := s.db.Read.QueryRowContext(ctx, s.db.Q(`SELECT
			(SELECT COUNT(*) FROM deployments WHERE name = ?) + (SELECT COUNT(*) FROM deployment_versions WHERE deployment = ?)`),
			id, id).Scan(&n)
		if err != nil {
			return Ref{}, errs.Wrap(err, "reading deployment")
		}
		if n == 0 {
			return Ref{}, errs.NotFoundf("deployment %q does not exist and never served a model version", id)
		}
		return Ref{KindDeployment, id}, nil
	}
	name, version, alias, ok := splitModelID(id)
	if !ok {
		return Ref{}, errs.Invalid("id %q: a model version is NAME/VERSION or NAME@ALIAS", id)
	}
	if alias != "" {
		// Looked up here rather than with GetVersionByAlias, which answers
		// an unknown alias as MLflow does, with invalid_argument; an
		// unknown node is not_found on this API.
		m, err := s.registry.GetRegisteredModel(ctx, name)
		if err != nil {
			return Ref{}, err
		}
		i := slices.IndexFunc(m.Aliases, func(a registry.Alias) bool { return a.Alias == alias })
		if i < 0 {
			return Ref{}, errs.NotFoundf("model %s has no alias %q", name, alias)
		}
		version = m.Aliases[i].Version
	}
	v, err := s.registry.GetModelVersion(ctx, name, version)
	if err != nil {
		return Ref{}, err
	}
	return modelRef(v.Name, v.Version), nil
}

func dataRef(name string, version int64) Ref {
	return Ref{KindData, fmt.Sprintf("%s@v%d", name, version)}
}

func modelRef(name string, version int64) Ref {
	return Ref{KindModel, name + "/" + strconv.FormatInt(version, 10)}
}

// splitModelID reads NAME/VERSION, the version after the last slash since
// names may hold slashes, or NAME@ALIAS.
func splitModelID(id string) (name string, version int64, alias string, ok bool) {
	if i := strings.LastIndexByte(id, '/'); i > 0 {
		if n, err := strconv.ParseInt(id[i+1:], 10, 64); err == nil && n > 0 {
			return id[:i], n, "", true
		}
	}
	if i := strings.LastIndexByte(id, '@'); i > 0 && i < len(id)-1 {
		return id[:i], 0, id[i+1:], true
	}
	return "", 0, "", false
}

// describe fills in each node's details. A run or model version another
// node names but that no longer exists is marked Missing.
func (s *Service) describe(ctx context.Context, nodes []Node) error {
	var runIDs []string
	for _, n := range nodes {
		if n.Kind == KindRun {
			runIDs = append(runIDs, n.ID)
		}
	}
	runs := map[string]*Run{}
	if len(runIDs) > 0 {
		rs, err := s.tracking.GetRuns(ctx, runIDs)
		if err != nil {
			return errs.Wrap(err, "reading lineage runs")
		}
		for _, r := range rs {
			runs[r.Info.RunID] = runDetails(r)
		}
	}
	for i := range nodes {
		n := &nodes[i]
		var err error
		switch n.Kind {
		case KindRun:
			n.Run = runs[n.ID]
		case KindModel:
			name, version, _, _ := splitModelID(n.ID)
			var v registry.ModelVersion
			if v, err = s.registry.GetModelVersion(ctx, name, version); err == nil {
				n.Model = modelDetails(v)
			}
		case KindData:
			name, version, _ := datasets.ParseRef(n.ID)
			var v datasets.Version
			if v, err = s.datasets.Version(ctx, name, version, false); err == nil {
				n.Data = &v
			}
		case KindDeployment:
			d := &Deployment{Name: n.ID}
			err = s.db.Read.QueryRowContext(ctx, s.db.Q(`SELECT revision, updated_time FROM deployments WHERE name = ?`), n.ID).
				Scan(&d.Revision, &d.UpdatedTime)
			switch {
			case errors.Is(err, sql.ErrNoRows):
				err = nil
			case err == nil:
				n.Deployment = d
			}
		}
		if err != nil && !errs.Is(err, errs.NotFound) {
			return err
		}
		n.Missing = n.Run == nil && n.Model == nil && n.Data == nil && n.Deployment == nil
	}
	return nil
}

func runDetails(r tracking.Run) *Run {
	out := &Run{
		RunID: r.Info.RunID, Name: r.Info.RunName, ExperimentID: r.Info.ExperimentID, Status: r.Info.Status,
		LifecycleStage: r.Info.LifecycleStage, UserID: r.Info.UserID, StartTime: r.Info.StartTime, EndTime: r.Info.EndTime,
		Params: make([]Param, len(r.Params)), Metrics: make([]Metric, len(r.Metrics)), Inputs: make([]Input, len(r.Inputs)),
	}
	for _, t := range r.Tags {
		switch t.Key {
		case TagGitCommit:
			out.GitCommit = t.Value
		case TagSourceName:
			out.SourceName = t.Value
		}
	}
	for i, p := range r.Params {
		out.Params[i] = Param(p)
	}
	for i, m := range r.Metrics {
		out.Metrics[i] = Metric{Key: m.Key, Value: m.Value, Timestamp: m.Timestamp, Step: m.Step}
	}
	for i, in := range r.Inputs {
		d := in.Dataset
		out.Inputs[i] = Input{Name: d.Name, Digest: d.Digest, SourceType: d.SourceType, Source: d.Source}
		for _, t := range in.Tags {
			if t.Key == tracking.TagContext {
				out.Inputs[i].Context = t.Value
			}
		}
	}
	return out
}

func modelDetails(v registry.ModelVersion) *ModelVersion {
	out := &ModelVersion{Name: v.Name, Version: v.Version, Status: v.Status, Stage: v.CurrentStage, Aliases: v.Aliases,
		Digest: v.Digest, Source: v.Source, CreationTime: v.CreationTime}
	if v.RunID != nil {
		out.RunID = *v.RunID
	}
	return out
}
