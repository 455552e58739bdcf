package tracking

import (
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/slipwayml/slipway/internal/errs"
)

// Limits from MLflow's mlflow/utils/validation.py, kept identical so that a
// request MLflow accepts is accepted here and one it refuses is refused.
const (
	MaxMetricsPerBatch      = 1000
	MaxParamsTagsPerBatch   = 100
	MaxEntitiesPerBatch     = 1000
	MaxBatchRequestBytes    = 1_000_000
	MaxParamValueLength     = 6000
	MaxTagValueLength       = 5000
	MaxEntityKeyLength      = 250
	MaxExperimentNameLength = 500
	MaxResultsDefault       = 1000
	MaxResultsLimit         = 50000
	MaxHistoryPage          = 25000
	MaxDatasetNameSize      = 500
	MaxDatasetDigestSize    = 36
	MaxDatasetSchemaSize    = 1048575
	MaxDatasetSourceSize    = 65535
	MaxDatasetProfileSize   = 16777215
	MaxInputTagKeySize      = 255
	MaxInputTagValueSize    = 500
)

var (
	validRunID        = regexp.MustCompile(`^[a-zA-Z0-9][\w\-]{0,255}$`)
	validExperimentID = regexp.MustCompile(`^[a-zA-Z0-9][\w\-]{0,63}$`)
)

// validName is MLflow's ^[/\w.\- ]*$ as Go's regexp reads it (\w is
// ASCII), written out: a log-batch checks a thousand names, and the regexp
// was 5% of the server's CPU under 20 logging clients.
func validName(s string) bool {
	for i := range len(s) {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '_', c == '/', c == '.', c == '-', c == ' ':
		default:
			return false
		}
	}
	return true
}

const badCharacters = "Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), and slashes (/)."

// invalidValue formats MLflow's message for a bad field value.
func invalidValue(field string, value any, rule string) error {
	js, _ := json.Marshal(value)
	if rule == "" {
		return errs.Invalid("Invalid value %s for parameter '%s' supplied.", js, field)
	}
	return errs.Invalid("Invalid value %s for parameter '%s' supplied: %s", js, field, rule)
}

// MissingValue formats MLflow's message for a missing required field.
func MissingValue(field string) error {
	return errs.Invalid("Missing value for required parameter '%s'. See the API docs for more information about request parameters.", field)
}

// validateKey applies MLflow's rules for metric, param and tag names: a
// restricted alphabet, and no name that a filesystem would read as another
// (names become file names in some artifact layouts).
func validateKey(field, key string) error {
	if key == "" {
		return MissingValue(field)
	}
	if !validName(key) {
		return invalidValue(field, key, badCharacters)
	}
	if norm := path.Clean(key); norm != key || norm == "." || strings.HasPrefix(norm, "..") || strings.HasPrefix(norm, "/") {
		return invalidValue(field, key, fmt.Sprintf("Names may be treated as files in certain cases, and must not resolve to other names when treated as such. This name would resolve to '%s'", norm))
	}
	if len(key) > MaxEntityKeyLength {
		return errs.Invalid("'%s' exceeds the maximum length of %d characters", field, MaxEntityKeyLength)
	}
	return nil
}

func validateLength(field, value string, limit int) error {
	if len(value) > limit {
		return errs.Invalid("'%s' exceeds the maximum length of %d characters", field, limit)
	}
	return nil
}

// ValidateRunID refuses run ids that could not have been issued.
func ValidateRunID(id string) error {
	if id == "" {
		return MissingValue("run_id")
	}
	if !validRunID.MatchString(id) {
		return errs.Invalid("Invalid run ID: '%s'", id)
	}
	return nil
}

// ValidateExperimentID refuses malformed experiment ids.
func ValidateExperimentID(id string) error {
	if id == "" {
		return MissingValue("experiment_id")
	}
	if !validExperimentID.MatchString(id) {
		return errs.Invalid("Invalid experiment ID: '%s'", id)
	}
	return nil
}

func validateExperimentName(name string) error {
	if strings.TrimSpace(name) == "" {
		return errs.Invalid("Invalid experiment name: '%s'", name)
	}
	return validateLength("name", name, MaxExperimentNameLength)
}

// validateMetric checks the key only: NaN and ±Inf are legitimate values
// (a diverged loss), and MLflow stores them.
func validateMetric(m Metric, field string) error {
	return validateKey(field+"key", m.Key)
}

func validateParam(p Param, field string) error {
	if err := validateKey(field+"key", p.Key); err != nil {
		return err
	}
	return validateLength(field+"value", p.Value, MaxParamValueLength)
}

func validateTag(t Tag, field string) error {
	if err := validateKey(field+"key", t.Key); err != nil {
		return err
	}
	return validateLength(field+"value", t.Value, MaxTagValueLength)
}

func validateBatch(metrics []Metric, params []Param, tags []Tag) error {
	if len(metrics) > MaxMetricsPerBatch {
		return batchLimit("metrics", MaxMetricsPerBatch, len(metrics))
	}
	if len(params) > MaxParamsTagsPerBatch {
		return batchLimit("params", MaxParamsTagsPerBatch, len(params))
	}
	if len(tags) > MaxParamsTagsPerBatch {
		return batchLimit("tags", MaxParamsTagsPerBatch, len(tags))
	}
	if n := len(metrics) + len(params) + len(tags); n > MaxEntitiesPerBatch {
		return batchLimit("metrics, params, and tags", MaxEntitiesPerBatch, n)
	}
	for i, m := range metrics {
		if err := validateMetric(m, fmt.Sprintf("metrics[%d].", i)); err != nil {
			return err
		}
	}
	seen := make(map[string]string, len(params))
	for i, p := range params {
		if err := validateParam(p, fmt.Sprintf("params[%d].", i)); err != nil {
			return err
		}
		if v, ok := seen[p.Key]; ok && v != p.Value {
			return errs.Invalid("Duplicate parameter keys have been submitted: ['%s']. Please ensure the request contains only one param value per param key.", p.Key)
		}
		seen[p.Key] = p.Value
	}
	for i, t := range tags {
		if err := validateTag(t, fmt.Sprintf("tags[%d].", i)); err != nil {
			return err
		}
	}
	return nil
}

func batchLimit(entity string, limit, got int) error {
	return errs.Invalid("A batch logging request can contain at most %d %s. Got %d %s. Please split up %s across multiple requests and try again.",
		limit, entity, got, entity, entity)
}

func validateDatasetInput(in DatasetInput, i int) error {
	d := in.Dataset
	field := fmt.Sprintf("datasets[%d].dataset.", i)
	switch {
	case d.Name == "":
		return MissingValue(field + "name")
	case d.Digest == "":
		return MissingValue(field + "digest")
	case d.SourceType == "":
		return MissingValue(field + "source_type")
	case d.Source == "":
		return MissingValue(field + "source")
	}
	for _, c := range []struct {
		f     string
		v     string
		limit int
	}{
		{"name", d.Name, MaxDatasetNameSize},
		{"digest", d.Digest, MaxDatasetDigestSize},
		{"source", d.Source, MaxDatasetSourceSize},
		{"schema", d.Schema, MaxDatasetSchemaSize},
		{"profile", d.Profile, MaxDatasetProfileSize},
	} {
		if err := validateLength(field+c.f, c.v, c.limit); err != nil {
			return err
		}
	}
	for j, t := range in.Tags {
		tf := fmt.Sprintf("datasets[%d].tags[%d].", i, j)
		if t.Key == "" {
			return MissingValue(tf + "key")
		}
		if err := validateLength(tf+"key", t.Key, MaxInputTagKeySize); err != nil {
			return err
		}
		if err := validateLength(tf+"value", t.Value, MaxInputTagValueSize); err != nil {
			return err
		}
	}
	return nil
}
