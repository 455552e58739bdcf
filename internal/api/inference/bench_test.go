package inference

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/slipwayml/slipway/internal/models"
	"github.com/slipwayml/slipway/internal/models/modeldir"
	"github.com/slipwayml/slipway/internal/tabular"
)

// rowEndpoint scores one row with PredictRow, which does not allocate, so
// that the benchmarks measure the protocol's cost.
type rowEndpoint struct{ o *modeldir.Opened }

func (e rowEndpoint) Name() string                { return "wide" }
func (e rowEndpoint) Version() string             { return "1" }
func (e rowEndpoint) Versions() []string          { return nil }
func (e rowEndpoint) Platform() string            { return "xgboost" }
func (e rowEndpoint) Signature() models.Signature { return e.o.Model.Signature() }
func (e rowEndpoint) Features() []tabular.Feature { return e.o.Features }
func (e rowEndpoint) Ready() bool                 { return true }
func (e rowEndpoint) Infer(ctx context.Context, req *Request, res *Result) error {
	if req.Rows == 1 {
		return e.o.Model.PredictRow(req.X, res.Outputs)
	}
	return e.o.Model.Predict(req.X, res.Outputs)
}

type oneResolver struct{ ep Endpoint }

func (r oneResolver) Endpoint(context.Context, string, string, string) (Endpoint, error) {
	return r.ep, nil
}
func (r oneResolver) Names(context.Context) []string { return []string{"wide"} }
func (r oneResolver) Ready(context.Context) bool     { return true }

// discard is a ResponseWriter that keeps nothing.
type discard struct {
	h    http.Header
	code int
	n    int
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) WriteHeader(code int)        { d.code = code }
func (d *discard) Write(b []byte) (int, error) { d.n += len(b); return len(b), nil }

// reusableBody replays one body for every request.
type reusableBody struct{ bytes.Reader }

func (*reusableBody) Close() error { return nil }

func wideRow() []string {
	vals := make([]string, 30)
	for j := range vals {
		vals[j] = fmt.Sprintf("%.4f", float64(j%7)*0.37-1.1)
	}
	return vals
}

func benchHandler(b *testing.B, handler func(*Server) http.HandlerFunc, path, ctype, body string, pathValues ...string) {
	f := loadFixtures(b)
	s := New(oneResolver{rowEndpoint{f.wide}}, Options{})
	h := handler(s)
	rb := &reusableBody{}
	r, _ := http.NewRequest("POST", path, rb)
	r.Header.Set("Content-Type", ctype)
	for i := 0; i+1 < len(pathValues); i += 2 {
		r.SetPathValue(pathValues[i], pathValues[i+1])
	}
	w := &discard{h: http.Header{}}
	raw := []byte(body)
	r.ContentLength = int64(len(raw))
	// Check once that it succeeds.
	rb.Reset(raw)
	h(w, r)
	if w.code != 0 && w.code != http.StatusOK {
		b.Fatalf("status %d", w.code)
	}
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rb.Reset(raw)
		h(w, r)
	}
}

// BenchmarkOIPSingleRow is one 30-feature row through POST
// /v2/models/{m}/infer: read, decode, validate, build the matrix, score
// (PredictRow) and encode the response.
func BenchmarkOIPSingleRow(b *testing.B) {
	vals := wideRow()
	var ins []string
	for j, v := range vals {
		ins = append(ins, fmt.Sprintf(`{"name":"f%02d","shape":[1],"datatype":"FP32","data":[%s]}`, j, v))
	}
	tensors := `{"id":"42","inputs":[` + strings.Join(ins, ",") + `]}`
	matrix := `{"id":"42","inputs":[{"name":"x","shape":[1,30],"datatype":"FP32","data":[` + strings.Join(vals, ",") + `]}]}`
	oip := func(s *Server) http.HandlerFunc { return s.Infer }
	b.Run("tensors", func(b *testing.B) {
		benchHandler(b, oip, "/v2/models/wide/infer", "application/json", tensors, "model", "wide")
	})
	b.Run("matrix", func(b *testing.B) {
		benchHandler(b, oip, "/v2/models/wide/infer", "application/json", matrix, "model", "wide")
	})
}

// BenchmarkInvocationsSingleRow is one 30-feature row through MLflow's
// /invocations.
func BenchmarkInvocationsSingleRow(b *testing.B) {
	vals := wideRow()
	var cols, rec []string
	for j, v := range vals {
		cols = append(cols, fmt.Sprintf(`"f%02d"`, j))
		rec = append(rec, fmt.Sprintf(`"f%02d":%s`, j, v))
	}
	inv := func(s *Server) http.HandlerFunc { return s.ServeInvocations }
	b.Run("dataframe_split", func(b *testing.B) {
		benchHandler(b, inv, "/invocations", "application/json", `{"dataframe_split":{"columns":[`+strings.Join(cols, ",")+`],"data":[[`+strings.Join(vals, ",")+`]]}}`)
	})
	b.Run("dataframe_records", func(b *testing.B) {
		benchHandler(b, inv, "/invocations", "application/json", `{"dataframe_records":[{`+strings.Join(rec, ",")+`}]}`)
	})
	b.Run("inputs", func(b *testing.B) {
		benchHandler(b, inv, "/invocations", "application/json", `{"inputs":[[`+strings.Join(vals, ",")+`]]}`)
	})
	b.Run("csv", func(b *testing.B) {
		benchHandler(b, inv, "/invocations", "text/csv", strings.Join(cols, ",")+"\n"+strings.Join(vals, ",")+"\n")
	})
}
