package search

import (
	"strings"
	"testing"

	"github.com/slipwayml/slipway/internal/errs"
)

func TestRegistryFilters(t *testing.T) {
	ok := []struct {
		versions bool
		filter   string
		where    string
	}{
		{false, "name = 'a'", "rm.name = ?"},
		{false, "name ILIKE 'a%' AND tags.`my tag` != 'x'", "LOWER(rm.name) LIKE LOWER(?) AND rm.model_id IN (SELECT t.model_id FROM registered_model_tags t WHERE t.key = ? AND t.value <> ?)"},
		{true, "run_id IN ('a', 'b') and version_number >= 2", "mv.run_id IN (?, ?) AND mv.version >= ?"},
		{true, "source_path LIKE 'runs:/%' AND tag.k = 'v'", "mv.source LIKE ? AND EXISTS (SELECT 1 FROM model_version_tags t WHERE t.model_id = mv.model_id AND t.version = mv.version AND t.key = ? AND t.value = ?)"},
	}
	for _, c := range ok {
		parse, compile := ParseRegisteredModelFilter, CompileRegisteredModels
		if c.versions {
			parse, compile = ParseModelVersionFilter, CompileModelVersions
		}
		f, err := parse(c.filter)
		if err != nil {
			t.Fatalf("%q: %v", c.filter, err)
		}
		sql, err := compile(f, nil, SQLite)
		if err != nil || sql.Where != c.where {
			t.Errorf("%q: got %q %v, want %q", c.filter, sql.Where, err, c.where)
		}
	}
	bad := []struct {
		versions bool
		filter   string
		want     string
	}{
		{false, "run_id = 'a'", "Invalid attribute key 'run_id'"},
		{false, "name = 1", "quoted string"},
		{false, "name IS NULL", "not supported"},
		{false, "name = 'a' OR name = 'b'", "Invalid clause"},
		{false, "name = 'a'; DROP TABLE x", "multiple expression"},
		{true, "version_number = 'x'", "numeric"},
		{true, "version_number LIKE 1", "Invalid comparator"},
		{true, "name IN ('a')", "Only the 'run_id'"},
		{true, "run_id NOT IN ('a')", "Invalid comparator"},
		{true, "metrics.x > 1", "Invalid entity type"},
	}
	for _, c := range bad {
		parse := ParseRegisteredModelFilter
		if c.versions {
			parse = ParseModelVersionFilter
		}
		_, err := parse(c.filter)
		if !errs.Is(err, errs.InvalidArgument) || !strings.Contains(errs.Message(err), c.want) {
			t.Errorf("%q: got %v, want InvalidArgument containing %q", c.filter, err, c.want)
		}
	}
}

func FuzzRegistryFilter(f *testing.F) {
	for _, s := range []string{"name = 'a'", "tags.x LIKE '%' AND name != 'b'", "run_id IN ('a','b')", "version_number > 3", "`a`.b = 'c'"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, versions := range []bool{false, true} {
			parse, compile := ParseRegisteredModelFilter, CompileRegisteredModels
			if versions {
				parse, compile = ParseModelVersionFilter, CompileModelVersions
			}
			fl, err := parse(s)
			if err != nil {
				if !errs.Is(err, errs.InvalidArgument) {
					t.Fatalf("%q: uncoded error %v", s, err)
				}
				continue
			}
			if _, err := compile(fl, nil, Postgres); err != nil && !errs.Is(err, errs.InvalidArgument) {
				t.Fatalf("%q: compile: %v", s, err)
			}
		}
	})
}
