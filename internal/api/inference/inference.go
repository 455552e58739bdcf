// Package inference serves models over the two inference protocols Slipway
// speaks: the Open Inference Protocol REST API (KServe V2: health, server
// and model metadata, model readiness and inference, with versions) and
// MLflow's /invocations scoring format (dataframe_split,
// dataframe_records, instances, inputs and CSV).
//
// It is a transport: it knows nothing of deployments. A Resolver finds an
// Endpoint by name; the package decodes a request, checks it against the
// endpoint's signature and features, builds the row-major matrix the model
// takes, calls Endpoint.Infer and encodes the answer. Bad input is a 4xx
// whose message names the input (or column) and the rule, never a 500.
//
// The hot path (decode a small JSON request, build the matrix, encode the
// response) reads the body with a hand-written scanner into pooled
// buffers, so a single-row request allocates almost nothing.
package inference

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"

	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/models"
	"github.com/slipwayml/slipway/internal/tabular"
)

// Endpoint is one servable model: a deployment, or one version of it.
// Implementations are safe for concurrent use.
type Endpoint interface {
	// Name is the model's name as the protocols address it.
	Name() string
	// Version is the model version that will answer, "" if it is not
	// known until a request is routed (traffic splitting).
	Version() string
	// Versions are the versions that may be requested explicitly
	// (/v2/models/{m}/versions/{v}); nil when there are none.
	Versions() []string
	// Platform names the runtime: "xgboost", "onnx", "mlflow-pyfunc", ...
	Platform() string
	// Signature names and types the inputs and outputs. Each output
	// column is one value per row of Result.Outputs.
	Signature() models.Signature
	// Features say how named inputs become the model's matrix, in column
	// order: a request must supply each of them, and nothing else.
	Features() []tabular.Feature
	// Ready reports whether the endpoint can answer now.
	Ready() bool
	// Infer scores req.X (req.Rows rows of len(Features()) values) into
	// res.Outputs, which the caller has sized to req.Rows ×
	// len(Signature().Outputs), row-major, and sets res.Version to the
	// version that answered. req and res belong to the caller and are
	// reused once Infer returns: keep nothing of them (copy what the
	// prediction log needs). Errors from internal/errs keep their code
	// (InvalidArgument is a 400, FailedPrecondition a 503, ...); other
	// errors are logged and answered as a 500.
	Infer(ctx context.Context, req *Request, res *Result) error
}

// Resolver finds endpoints.
type Resolver interface {
	// Endpoint finds a model by name and version ("" = whatever the
	// deployment routes to); routingKey is the sticky A/B key from the
	// request's routing header ("" if absent). A model that does not
	// exist is an errs.NotFound error.
	Endpoint(ctx context.Context, name, version, routingKey string) (Endpoint, error)
	// Names lists the models served, for standalone /invocations (which
	// scores the only one) and diagnostics.
	Names(ctx context.Context) []string
	// Ready reports whether every model is ready (/v2/health/ready).
	Ready(ctx context.Context) bool
}

// Request is one decoded, validated batch. Every slice in it is valid only
// until Infer returns.
type Request struct {
	// Rows is the number of rows in the batch, at least 1.
	Rows int
	// X holds the rows, row-major, len(Features()) values each, as the
	// model reads them: numbers as float32, categories as their codes
	// among Feature.Levels, NaN for a missing value (or a category the
	// model never saw).
	X []float32
	// ID identifies the request: the OIP "id" when given, else the
	// X-Request-Id header, else "".
	ID string
	// Protocol is ProtocolOIP or ProtocolMLflow; Format is how the inputs
	// were laid out: "tensors" (one OIP input per column) or "matrix"
	// (one [N, F] OIP input), or an MLflow format: "dataframe_split",
	// "dataframe_records", "instances", "inputs", "csv".
	Protocol, Format string
	// Parameters are the OIP request's "parameters" or MLflow's "params",
	// nil when absent.
	Parameters map[string]any
	// RoutingKey is the value of the routing header (Options.RoutingHeader).
	RoutingKey string
	// Body is the request body as received, for the prediction log.
	Body []byte
}

// Protocols a Request may come by.
const (
	ProtocolOIP    = "oip"
	ProtocolMLflow = "mlflow"
)

// Result is what Infer answers.
type Result struct {
	// Outputs holds Rows × len(Signature().Outputs) values, row-major;
	// the caller sizes it and Infer fills it. NaN and ±Inf are sent as
	// JSON null.
	Outputs []float32
	// Version is the model version that answered; "" falls back to the
	// endpoint's Version.
	Version string
	// Parameters, when set, are returned as the OIP response's
	// "parameters".
	Parameters map[string]any
}

// Options tune the handlers. Zero values take the defaults.
type Options struct {
	// MaxRows bounds the rows in one request (default 10,000).
	MaxRows int
	// MaxBodyBytes bounds a request body (default 32 MiB).
	MaxBodyBytes int64
	// ServerVersion is reported by GET /v2.
	ServerVersion string
	// RoutingHeader names the header whose value is the sticky routing
	// key (default "X-Slipway-Routing-Key").
	RoutingHeader string
	// Log receives internal errors (default slog.Default()).
	Log *slog.Logger
}

// Defaults for Options.
const (
	DefaultMaxRows       = 10_000
	DefaultMaxBodyBytes  = 32 << 20
	DefaultRoutingHeader = "X-Slipway-Routing-Key"
)

// Server holds the handlers of both protocols over one Resolver.
type Server struct {
	res  Resolver
	opts Options
	pool sync.Pool // *call
}

// New returns a Server; mount its handlers with Register and
// ServeInvocations.
func New(r Resolver, opts Options) *Server {
	if opts.MaxRows <= 0 {
		opts.MaxRows = DefaultMaxRows
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.RoutingHeader == "" {
		opts.RoutingHeader = DefaultRoutingHeader
	}
	opts.RoutingHeader = http.CanonicalHeaderKey(opts.RoutingHeader) // for headerValue
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	s := &Server{res: r, opts: opts}
	s.pool.New = func() any { return new(call) }
	return s
}

// Register mounts the Open Inference Protocol routes on mux and returns
// the Server, whose ServeInvocations the caller places where MLflow
// scoring should live.
func Register(mux *http.ServeMux, r Resolver, opts Options) *Server {
	s := New(r, opts)
	s.Register(mux)
	return s
}

// call is one request's reusable state.
type call struct {
	body []byte
	sc   scanner
	oip  oipRequest
	ml   mlRequest
	req  Request
	res  Result
	out  []byte
	// matrix/column scratch
	idx    []int
	seen   []bool
	levels []levelIndex
	dtypes []*dtype
}

func (s *Server) get() *call { return s.pool.Get().(*call) }

// maxPooled bounds the buffers kept for reuse, so that one huge request
// does not pin its memory.
const maxPooled = 1 << 20

func (s *Server) put(c *call) {
	if cap(c.body) > maxPooled || cap(c.req.X) > maxPooled/4 || cap(c.out) > maxPooled ||
		cap(c.oip.vals) > maxPooled/32 || cap(c.sc.arena) > maxPooled || cap(c.res.Outputs) > maxPooled/4 {
		return
	}
	c.req = Request{X: c.req.X[:0]}
	c.ml.features, c.ml.sig = nil, models.Signature{}
	c.res = Result{Outputs: c.res.Outputs[:0]}
	s.pool.Put(c)
}

// readBody reads the request body into c.body, within the size limit.
func (s *Server) readBody(c *call, r *http.Request) error {
	limit := s.opts.MaxBodyBytes
	if r.ContentLength > limit {
		return tooLarge(limit)
	}
	b := c.body[:0]
	if r.ContentLength > 0 && int64(cap(b)) < r.ContentLength {
		b = make([]byte, 0, r.ContentLength)
	}
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Body.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if int64(len(b)) > limit {
			c.body = b[:0]
			return tooLarge(limit)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			c.body = b[:0]
			return errs.Invalid("request body: %v", err)
		}
	}
	c.body = b
	return nil
}

// statusError carries an HTTP status that no errs code names.
type statusError struct {
	status int
	code   string // MLflow error_code
	msg    string
}

func (e *statusError) Error() string { return e.msg }

func tooLarge(limit int64) error {
	return &statusError{http.StatusRequestEntityTooLarge, "RESOURCE_EXHAUSTED", "request body: larger than " + strconv.FormatInt(limit, 10) + " bytes"}
}

// classify maps an error to its HTTP status, MLflow error_code and the
// message the caller may see, once for both protocols.
func (s *Server) classify(r *http.Request, err error) (int, string, string) {
	var se *statusError
	if errors.As(err, &se) {
		return se.status, se.code, se.msg
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout, "DEADLINE_EXCEEDED", "the model did not answer in time"
	case errors.Is(err, context.Canceled):
		return 499, "CANCELLED", "the request was cancelled"
	}
	switch errs.CodeOf(err) {
	case errs.InvalidArgument:
		return http.StatusBadRequest, "BAD_REQUEST", errs.Message(err)
	case errs.NotFound:
		return http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", errs.Message(err)
	case errs.FailedPrecondition:
		return http.StatusServiceUnavailable, "TEMPORARILY_UNAVAILABLE", errs.Message(err)
	case errs.AlreadyExists:
		return http.StatusConflict, "RESOURCE_ALREADY_EXISTS", errs.Message(err)
	case errs.PermissionDenied:
		return http.StatusForbidden, "PERMISSION_DENIED", errs.Message(err)
	case errs.Unauthenticated:
		return http.StatusUnauthorized, "UNAUTHENTICATED", errs.Message(err)
	case errs.ResourceExhausted:
		return http.StatusTooManyRequests, "REQUEST_LIMIT_EXCEEDED", errs.Message(err)
	}
	s.opts.Log.Error("inference request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	return http.StatusInternalServerError, "INTERNAL_ERROR", "internal error"
}

var jsonContentType = []string{"application/json"}

func writeBody(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h["Content-Type"] = jsonContentType
	w.WriteHeader(status)
	w.Write(body)
}

// headerValue is h.Get(key) for a key already in canonical form, which
// Get would canonicalise again at every call.
func headerValue(h http.Header, key string) string {
	if vs := h[key]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}

// endpoint resolves the model a request names.
func (s *Server) endpoint(r *http.Request, name, version string) (Endpoint, error) {
	if name == "" {
		return nil, errs.NotFoundf("no model name in the path")
	}
	ep, err := s.res.Endpoint(r.Context(), name, version, headerValue(r.Header, s.opts.RoutingHeader))
	if err != nil {
		return nil, err
	}
	if ep == nil {
		return nil, errs.NotFoundf("no model %q", name)
	}
	return ep, nil
}

func notReady(ep Endpoint) error {
	return errs.New(errs.FailedPrecondition, "model %q is not ready", ep.Name())
}

// infer runs the endpoint on c.req, sizing the outputs.
func (s *Server) infer(r *http.Request, ep Endpoint, c *call, nout int) error {
	c.req.RoutingKey = headerValue(r.Header, s.opts.RoutingHeader)
	c.req.Body = c.body
	if c.req.ID == "" {
		c.req.ID = headerValue(r.Header, "X-Request-Id")
	}
	n := c.req.Rows * nout
	if cap(c.res.Outputs) < n {
		c.res.Outputs = make([]float32, n)
	}
	c.res.Outputs = c.res.Outputs[:n]
	if err := ep.Infer(r.Context(), &c.req, &c.res); err != nil {
		return err
	}
	if len(c.res.Outputs) != n {
		return errs.Wrap(errors.New("endpoint "+ep.Name()+" resized Result.Outputs"), "internal error")
	}
	return nil
}

func (c *call) version(ep Endpoint) string {
	if c.res.Version != "" {
		return c.res.Version
	}
	return ep.Version()
}
