package registry

import (
	"context"
	"strconv"
	"strings"

	"github.com/slipwayml/slipway/internal/blob"
	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/tracking"
)

// source is a resolved model-version source: a store key, and whether it
// names one file rather than a directory.
type source struct {
	key    string
	isFile bool
	// What the files come from, resolved now for lineage: an alias moves
	// and a model can be renamed, but a version's origin does not change.
	runID            string
	modelID, version int64
}

func badSource(src, why string) error {
	return errs.Invalid("Invalid model version source: '%s'. %s", src, why)
}

const allowedSources = "A source must be a location this server stores: runs:/<run_id>/<path>, mlflow-artifacts:/<path>, models:/<name>/<version>, models:/<name>@<alias>, " +
	"or a location inside the server's artifact root written as the root is configured (an absolute path, a file:// URL, or an s3:// URL)."

// resolveSource turns a client's source into a store key. Only locations
// the server owns are accepted, and every path part goes through the blob
// package's key rules, which refuse "..", absolute paths, schemes,
// percent-encoded and double-encoded sequences, "?", "#", ";", backslashes,
// NUL and Unicode look-alikes: the classes of MLflow's CVEs through
// model-version sources.
func (s *Service) resolveSource(ctx context.Context, src, runID string) (source, error) {
	if runID != "" {
		if err := tracking.ValidateRunID(runID); err != nil {
			return source{}, err
		}
	}
	var key, fromRun string
	switch scheme, rest, _ := strings.Cut(src, ":"); strings.ToLower(scheme) {
	case "runs":
		k, id, err := s.runsSource(ctx, src, rest, runID)
		if err != nil {
			return source{}, err
		}
		key, fromRun = k, id
	case blob.ArtifactScheme:
		k, err := blob.ResolveLocation(src)
		if err != nil {
			return source{}, badSource(src, errs.Message(err)+". "+allowedSources)
		}
		if blob.IsWithin(k, StorageDir) {
			return source{}, badSource(src, "Registry storage cannot be a source; register from models:/<name>/<version> instead.")
		}
		if runID != "" {
			root, err := s.runRoot(ctx, runID)
			if err != nil {
				return source{}, err
			}
			if !blob.IsWithin(k, root) {
				return source{}, badSource(src, "It is not inside the artifact directory of run '"+runID+"' given as run_id.")
			}
		}
		key = k
	case "models":
		return s.modelsSource(ctx, src, rest)
	default:
		k, err := s.rootSource(ctx, src, runID)
		if err != nil {
			return source{}, err
		}
		key = k
	}
	out, err := s.statSource(ctx, src, key)
	out.runID = fromRun
	return out, err
}

// runsSource resolves "runs:/<run_id>/<path>" against the run's artifact
// root and returns the key and the run id.
func (s *Service) runsSource(ctx context.Context, src, rest, runID string) (string, string, error) {
	if !strings.HasPrefix(rest, "/") || strings.HasPrefix(rest, "//") {
		return "", "", badSource(src, "A runs URI must look like runs:/<run_id>/<path>.")
	}
	id, path, _ := strings.Cut(rest[1:], "/")
	if id == "" {
		return "", "", badSource(src, "A runs URI must look like runs:/<run_id>/<path>.")
	}
	if err := tracking.ValidateRunID(id); err != nil {
		return "", "", badSource(src, "The run id is malformed.")
	}
	if runID != "" && runID != id {
		return "", "", badSource(src, "It names run '"+id+"' but run_id is '"+runID+"'.")
	}
	sub, err := blob.CleanKey(path)
	if err != nil {
		return "", "", badSource(src, errs.Message(err)+".")
	}
	root, err := s.runRoot(ctx, id)
	if err != nil {
		return "", "", err
	}
	if sub == "" {
		return root, id, nil
	}
	return root + "/" + sub, id, nil
}

// runRoot is the store key of a run's artifact directory.
func (s *Service) runRoot(ctx context.Context, runID string) (string, error) {
	if s.tracking == nil {
		return "", errs.Invalid("runs are not available to the registry")
	}
	run, err := s.tracking.GetRun(ctx, runID)
	if err != nil {
		return "", err
	}
	root, err := blob.ResolveLocation(run.Info.ArtifactURI)
	if err != nil {
		return "", errs.New(errs.FailedPrecondition, "run %s stores its artifacts at %s, which this server does not serve", runID, run.Info.ArtifactURI)
	}
	return root, nil
}

// modelsSource resolves "models:/<name>/<version>" or
// "models:/<name>@<alias>" to that version's files, which must still match
// their manifest: a changed file is not copied into a new version.
func (s *Service) modelsSource(ctx context.Context, src, rest string) (source, error) {
	if !strings.HasPrefix(rest, "/") || strings.HasPrefix(rest, "//") {
		return source{}, badSource(src, "A models URI must look like models:/<name>/<version> or models:/<name>@<alias>.")
	}
	rest = rest[1:]
	var v ModelVersion
	var err error
	if i := strings.LastIndexByte(rest, '/'); i > 0 && isDigits(rest[i+1:]) {
		n, perr := strconv.ParseInt(rest[i+1:], 10, 64)
		if perr != nil {
			return source{}, badSource(src, "The version is not a number.")
		}
		v, err = s.GetModelVersion(ctx, rest[:i], n)
	} else if i := strings.LastIndexByte(rest, '@'); i > 0 {
		v, err = s.GetVersionByAlias(ctx, rest[:i], rest[i+1:])
	} else {
		return source{}, badSource(src, "A models URI must look like models:/<name>/<version> or models:/<name>@<alias>.")
	}
	if err != nil {
		return source{}, err
	}
	if v.Status != StatusReady {
		return source{}, errs.New(errs.FailedPrecondition, "Model Version (name=%s, version=%d) is %s, not READY", v.Name, v.Version, v.Status)
	}
	rep, err := s.verify(ctx, v)
	if err != nil {
		return source{}, err
	}
	if !rep.OK() {
		return source{}, errs.New(errs.FailedPrecondition, "Model Version (name=%s, version=%d) no longer matches its manifest (%s); it cannot be a source", v.Name, v.Version, rep.Summary())
	}
	key, err := blob.ResolveLocation(v.StorageLocation)
	if err != nil {
		return source{}, err
	}
	out, err := s.statSource(ctx, src, key)
	out.modelID, out.version = v.modelID, v.Version
	return out, err
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func (s *Service) statSource(ctx context.Context, src, key string) (source, error) {
	e, err := s.artifacts.Stat(ctx, key)
	if errs.Is(err, errs.NotFound) {
		return source{}, badSource(src, "No artifacts exist there; log the model's files first.")
	}
	if err != nil {
		return source{}, err
	}
	return source{key: key, isFile: !e.IsDir}, nil
}
