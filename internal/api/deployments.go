package api

import (
	"context"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slipwayml/slipway/internal/api/inference"
	"github.com/slipwayml/slipway/internal/models"
	"github.com/slipwayml/slipway/internal/serving"
	"github.com/slipwayml/slipway/internal/tabular"
)

// mountInference serves deployments over the Open Inference Protocol
// (/v2/models/NAME/infer) and MLflow's scoring format
// (/deployments/NAME/invocations).
func mountInference(mux *http.ServeMux, cfg Config) {
	cfg.Registry.MustRegister(cfg.Deployments.Collector())
	resolver := &deploymentResolver{s: cfg.Deployments}
	cfg.Deployments.OnUnload(resolver.forget)
	srv := inference.Register(mux, resolver, inference.Options{ServerVersion: cfg.Version, Log: cfg.Log})
	mux.HandleFunc("POST /deployments/{name}/invocations", srv.ServeInvocations)
	mux.HandleFunc("POST /deployments/{name}/versions/{version}/invocations", srv.ServeInvocations)
}

// deploymentResolver answers the inference protocols from the live
// deployments: a request to a deployment is routed by its split (and
// routing key); a request naming a version gets that version if the
// deployment serves it.
type deploymentResolver struct {
	s         *serving.Service
	endpoints sync.Map // endpointKey -> *deploymentEndpoint
}

type endpointKey struct {
	name  string
	model *serving.Loaded
}

func (r *deploymentResolver) Endpoint(ctx context.Context, name, version, routingKey string) (inference.Endpoint, error) {
	var m *serving.Loaded
	var err error
	if version != "" {
		m, err = r.s.Version(name, version)
	} else {
		m, _, err = r.s.Route(name, routingKey)
	}
	if err != nil {
		return nil, err
	}
	// One endpoint per deployment and loaded version, made once: the hot
	// path allocates nothing here.
	key := endpointKey{name, m}
	if ep, ok := r.endpoints.Load(key); ok {
		return ep.(*deploymentEndpoint), nil
	}
	ep, _ := r.endpoints.LoadOrStore(key, &deploymentEndpoint{r: r, name: name, m: m, stats: r.s.Stats(name, m)})
	return ep.(*deploymentEndpoint), nil
}

// forget drops the endpoints of a version serving unloaded.
func (r *deploymentResolver) forget(m *serving.Loaded) {
	r.endpoints.Range(func(k, _ any) bool {
		if k.(endpointKey).model == m {
			r.endpoints.Delete(k)
		}
		return true
	})
}

func (r *deploymentResolver) Names(ctx context.Context) []string {
	names := r.s.Names()
	sort.Strings(names)
	return names
}

func (r *deploymentResolver) Ready(ctx context.Context) bool { return true }

// deploymentEndpoint is one deployment answering with one loaded version.
type deploymentEndpoint struct {
	r     *deploymentResolver
	name  string
	m     *serving.Loaded
	stats *serving.VersionStats
}

func (e *deploymentEndpoint) Name() string                { return e.name }
func (e *deploymentEndpoint) Version() string             { return e.m.VersionString() }
func (e *deploymentEndpoint) Versions() []string          { return e.r.s.ServedVersions(e.name) }
func (e *deploymentEndpoint) Platform() string            { return e.m.Platform }
func (e *deploymentEndpoint) Signature() models.Signature { return e.m.Model.Model.Signature() }
func (e *deploymentEndpoint) Features() []tabular.Feature { return e.m.Model.Features }
func (e *deploymentEndpoint) Ready() bool                 { return true }

// Infer answers, counts the request for the deployment's metrics and
// rollouts, and records it in the prediction log; a request without an id
// (OIP "id" or X-Request-Id) is logged under a generated one.
func (e *deploymentEndpoint) Infer(ctx context.Context, req *inference.Request, res *inference.Result) error {
	start := time.Now()
	model := e.m.Model.Model
	var err error
	if req.Rows == 1 {
		err = model.PredictRow(req.X, res.Outputs)
	} else {
		err = model.Predict(req.X, res.Outputs)
	}
	took := time.Since(start)
	e.stats.Record(took, err != nil)
	res.Version = e.m.VersionString()
	if err != nil {
		return err
	}
	id := req.ID
	if id == "" {
		id = generatedID()
	}
	e.r.s.Observe(e.name, e.m, id, req.Rows, req.X, res.Outputs, took)
	return nil
}

var (
	idPrefix = strconv.FormatInt(time.Now().UnixNano(), 36) + "-"
	idSeq    atomic.Int64
)

// generatedID names a request that came without an id: unique within
// this server's life and across restarts.
func generatedID() string {
	var b [32]byte
	return string(strconv.AppendInt(append(b[:0], idPrefix...), idSeq.Add(1), 36))
}
