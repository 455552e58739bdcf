package inference

import (
	"context"

	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/models"
	"github.com/slipwayml/slipway/internal/tabular"
)

// Single returns a Resolver of one model, for standalone serving
// (`slipway serve`): the model answers under name, at version.
func Single(name, version, platform string, m models.Model, features []tabular.Feature) Resolver {
	return &single{ep: &modelEndpoint{name: name, version: version, platform: platform, m: m, features: features}}
}

type single struct{ ep *modelEndpoint }

func (s *single) Endpoint(ctx context.Context, name, version, routingKey string) (Endpoint, error) {
	if name != s.ep.name {
		return nil, errs.NotFoundf("model %q is not served here (this server serves %q)", name, s.ep.name)
	}
	if version != "" && version != s.ep.version {
		return nil, errs.NotFoundf("model %q has no version %q here (this server serves version %s)", name, version, s.ep.version)
	}
	return s.ep, nil
}

func (s *single) Names(ctx context.Context) []string { return []string{s.ep.name} }
func (s *single) Ready(ctx context.Context) bool     { return true }

type modelEndpoint struct {
	name, version, platform string
	m                       models.Model
	features                []tabular.Feature
}

func (e *modelEndpoint) Name() string                { return e.name }
func (e *modelEndpoint) Version() string             { return e.version }
func (e *modelEndpoint) Versions() []string          { return []string{e.version} }
func (e *modelEndpoint) Platform() string            { return e.platform }
func (e *modelEndpoint) Signature() models.Signature { return e.m.Signature() }
func (e *modelEndpoint) Features() []tabular.Feature { return e.features }
func (e *modelEndpoint) Ready() bool                 { return true }

func (e *modelEndpoint) Infer(ctx context.Context, req *Request, res *Result) error {
	res.Version = e.version
	if req.Rows == 1 {
		return e.m.PredictRow(req.X, res.Outputs)
	}
	return e.m.Predict(req.X, res.Outputs)
}
