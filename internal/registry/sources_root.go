package registry

import (
	"context"

	"github.com/slipwayml/slipway/internal/blob"
	"github.com/slipwayml/slipway/internal/errs"
)

// rootSource resolves a source written as a location inside the server's
// artifact root (what an MLflow client configured with the root itself,
// not the artifact proxy, sends) to its store key, with the checks an
// mlflow-artifacts:/ source gets: not registry storage, not the uploads
// folder, and inside run_id's artifacts when run_id is given. Any other
// source is refused with the list of accepted forms.
func (s *Service) rootSource(ctx context.Context, src, runID string) (string, error) {
	if !blob.IsAbsoluteLocation(src) || s.artifacts == nil {
		return "", badSource(src, allowedSources)
	}
	k, err := s.artifacts.RootKey(src)
	if err != nil {
		return "", badSource(src, errs.Message(err)+". "+allowedSources)
	}
	switch {
	case blob.IsWithin(k, StorageDir):
		return "", badSource(src, "Registry storage cannot be a source; register from models:/<name>/<version> instead.")
	case blob.IsWithin(k, blob.UploadsDir):
		return "", badSource(src, "It names uploads in progress, not artifacts.")
	}
	if runID != "" {
		root, err := s.runRoot(ctx, runID)
		if err != nil {
			return "", err
		}
		if !blob.IsWithin(k, root) {
			return "", badSource(src, "It is not inside the artifact directory of run '"+runID+"' given as run_id.")
		}
	}
	return k, nil
}
