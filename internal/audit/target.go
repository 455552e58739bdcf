package audit

import (
	"strconv"
	"strings"

	"github.com/slipwayml/slipway/internal/errs"
)

// Target types.
const (
	TypeModel      = "model"
	TypeDataset    = "dataset"
	TypeDeployment = "deployment"
)

// Target is what a change was made to: a registered model or a dataset,
// and a version of it (0 for the whole model or dataset).
type Target struct {
	Type    string
	Name    string
	Version int64
}

// Model is a registered model as a whole.
func Model(name string) Target { return Target{Type: TypeModel, Name: name} }

// ModelVersion is one version of a registered model.
func ModelVersion(name string, version int64) Target {
	return Target{Type: TypeModel, Name: name, Version: version}
}

// Dataset is a dataset as a whole.
func Dataset(name string) Target { return Target{Type: TypeDataset, Name: name} }

// DatasetVersion is one version of a dataset.
func DatasetVersion(name string, version int64) Target {
	return Target{Type: TypeDataset, Name: name, Version: version}
}

// Deployment is a serving deployment.
func Deployment(name string) Target { return Target{Type: TypeDeployment, Name: name} }

// String names the target as users name it elsewhere: models:/NAME and
// models:/NAME/VERSION as MLflow does, data:NAME and data:NAME@vN as
// `slipway lineage` does, deployments:/NAME.
func (t Target) String() string {
	switch t.Type {
	case TypeModel:
		if t.Version != 0 {
			return "models:/" + t.Name + "/" + strconv.FormatInt(t.Version, 10)
		}
		return "models:/" + t.Name
	case TypeDataset:
		if t.Version != 0 {
			return "data:" + t.Name + "@v" + strconv.FormatInt(t.Version, 10)
		}
		return "data:" + t.Name
	case TypeDeployment:
		return "deployments:/" + t.Name
	}
	return t.Type + ":/" + t.Name
}

// ParseTarget reads the forms String writes, and data:/NAME too. As in
// models:/ URIs, a last path segment of digits is the version, so
// models:/a/1 is version 1 of a.
func ParseTarget(s string) (Target, error) {
	bad := func(why string) (Target, error) {
		return Target{}, errs.Invalid("target %q: %s; want models:/NAME, models:/NAME/VERSION, data:NAME or data:NAME@vN", s, why)
	}
	if rest, ok := strings.CutPrefix(s, "models:/"); ok {
		if rest == "" {
			return bad("no model name")
		}
		if i := strings.LastIndexByte(rest, '/'); i > 0 && isDigits(rest[i+1:]) {
			v, err := strconv.ParseInt(rest[i+1:], 10, 64)
			if err != nil || v <= 0 {
				return bad("the version must be a positive number")
			}
			return ModelVersion(rest[:i], v), nil
		}
		return Model(rest), nil
	}
	if rest, ok := strings.CutPrefix(s, "deployments:/"); ok && rest != "" {
		return Deployment(rest), nil
	}
	if rest, ok := strings.CutPrefix(s, "data:"); ok {
		rest = strings.TrimPrefix(rest, "/")
		if rest == "" {
			return bad("no dataset name")
		}
		if i := strings.LastIndex(rest, "@v"); i > 0 && isDigits(rest[i+2:]) {
			v, err := strconv.ParseInt(rest[i+2:], 10, 64)
			if err != nil || v <= 0 {
				return bad("the version must be a positive number")
			}
			return DatasetVersion(rest[:i], v), nil
		}
		return Dataset(rest), nil
	}
	return bad("unknown kind")
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
