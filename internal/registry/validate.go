package registry

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/tracking"
)

// Limits from MLflow's mlflow/utils/validation.py and its registry schema.
const (
	MaxTagKeyLength    = 250
	MaxTagValueLength  = 5000
	MaxAliasLength     = 255
	MaxNameLength      = 256
	MaxDescription     = 65535
	MaxSourceLength    = 4096
	MaxRunLinkLength   = 4096
	MaxSearchModels    = 1000
	MaxSearchVersions  = 200_000
	DefaultSearchModel = 100
)

var (
	validAlias        = regexp.MustCompile(`^[\w\-]*$`)
	versionAliasShape = regexp.MustCompile(`^[vV]\d+$`)
	validTagKey       = regexp.MustCompile(`^[/\w.\- :]*$`)
)

func missing(field string) error { return tracking.MissingValue(field) }

// checkText refuses what no database column can hold: PostgreSQL rejects
// NUL in text, and answering that with a 500 would be a bug.
func checkText(field, value string, limit int) error {
	if strings.IndexByte(value, 0) >= 0 {
		return errs.Invalid("Invalid value for parameter '%s': must not contain NUL characters", field)
	}
	if limit > 0 && len(value) > limit {
		return errs.Invalid("'%s' exceeds the maximum length of %d characters", field, limit)
	}
	return nil
}

func validateName(field, name string) error {
	if name == "" {
		return missing(field)
	}
	return checkText(field, name, MaxNameLength)
}

// ParseVersion reads a model version number, sent as a string on the wire.
func ParseVersion(v string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		if v == "" {
			return 0, missing("version")
		}
		return 0, errs.Invalid("Parameter 'version' must be an integer, got '%s'.", v)
	}
	return n, nil
}

// validateTag applies MLflow's _validate_registered_model_tag and
// _validate_model_version_tag: a tag name as for runs, and length limits.
func validateTag(t Tag, field string) error {
	if t.Key == "" {
		return missing(field + "key")
	}
	if !validTagKey.MatchString(t.Key) {
		return errs.Invalid("Invalid value %q for parameter '%skey' supplied: Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), colon(:) and slashes (/).", t.Key, field)
	}
	if norm := cleanName(t.Key); norm != t.Key {
		return errs.Invalid("Invalid value %q for parameter '%skey' supplied: Names may be treated as files in certain cases, and must not resolve to other names when treated as such. This name would resolve to '%s'", t.Key, field, norm)
	}
	if err := checkText(field+"key", t.Key, MaxTagKeyLength); err != nil {
		return err
	}
	return checkText(field+"value", t.Value, MaxTagValueLength)
}

// cleanName is posixpath.normpath as MLflow's path_not_unique applies it;
// a name that changes under it (or is "." or climbs) is refused.
func cleanName(name string) string {
	parts := strings.Split(name, "/")
	var out []string
	for i, p := range parts {
		switch {
		case p == "" && i > 0, p == ".":
			continue
		case p == "..":
			return ".."
		}
		out = append(out, p)
	}
	s := strings.Join(out, "/")
	if s == "" || s == "." {
		return "."
	}
	return s
}

func validateTags(tags []Tag) error {
	for i, t := range tags {
		if err := validateTag(t, fmt.Sprintf("tags[%d].", i)); err != nil {
			return err
		}
	}
	return nil
}

// validateAlias applies MLflow's _validate_model_alias_name.
func validateAlias(alias string) error {
	if alias == "" {
		return errs.Invalid("Registered model alias name cannot be empty.")
	}
	if !validAlias.MatchString(alias) {
		return errs.Invalid("Invalid alias name: '%s'. Names may only contain alphanumerics, underscores (_), and dashes (-).", alias)
	}
	if len(alias) > MaxAliasLength {
		return errs.Invalid("'Registered model alias name' exceeds the maximum length of %d characters", MaxAliasLength)
	}
	if strings.EqualFold(alias, "latest") {
		return errs.Invalid("'latest' alias name (case insensitive) is reserved.")
	}
	if versionAliasShape.MatchString(alias) {
		return errs.Invalid("Version alias name '%s' is reserved.", alias)
	}
	return nil
}

// CanonicalStage maps a stage name, in any case, to MLflow's spelling.
func CanonicalStage(stage string) (string, error) {
	for _, s := range []string{StageNone, StageStaging, StageProduction, StageArchived} {
		if strings.EqualFold(stage, s) {
			return s, nil
		}
	}
	return "", errs.Invalid("Invalid Model Version stage: %s. Value must be one of None, Staging, Production, Archived.", stage)
}
