package search

import (
	"strings"

	"github.com/slipwayml/slipway/internal/errs"
)

// The model registry's search grammar (MLflow's SearchModelUtils and
// SearchModelVersionUtils): the same clause syntax as runs and experiments,
// with fewer identifiers. Registered models filter on name and tags;
// model versions on name, version_number, run_id, source_path and tags.
// Clauses are joined with AND; values are quoted strings, except
// version_number, which is a number.
//
// The compiled fragments fit these queries (args: WhereArgs, then the
// caller's own):
//
//	SELECT ... FROM registered_models rm
//	WHERE (<Where>) ORDER BY <OrderBy>
//
//	SELECT ... FROM model_versions mv JOIN registered_models rm ON rm.model_id = mv.model_id
//	WHERE <not deleted> AND (<Where>) ORDER BY <OrderBy>

// registryGrammar describes one of the two registry searches.
type registryGrammar struct {
	versions bool
	// attrs maps attribute names, as typed, to columns.
	attrs map[string]string
	// numeric lists the attributes compared as numbers.
	numeric map[string]bool
}

var registeredModelGrammar = &registryGrammar{
	attrs: map[string]string{"name": "rm.name"},
}

var modelVersionGrammar = &registryGrammar{
	versions: true,
	attrs: map[string]string{
		"name":           "rm.name",
		"version_number": "mv.version",
		"run_id":         "mv.run_id",
		"source_path":    "mv.source",
	},
	numeric: map[string]bool{"version_number": true},
}

var registryStrOps = opSet(OpEq, OpNe, OpLike, OpILike)

// ParseRegisteredModelFilter parses a search_registered_models filter, such
// as "name LIKE 'churn%' AND tags.team = 'risk'".
func ParseRegisteredModelFilter(s string) (Filter, error) {
	return parseRegistryFilter(s, registeredModelGrammar)
}

// ParseModelVersionFilter parses a search_model_versions filter, such as
// "name = 'churn' AND run_id IN ('a1', 'b2')".
func ParseModelVersionFilter(s string) (Filter, error) {
	return parseRegistryFilter(s, modelVersionGrammar)
}

// parseRegistryFilter reads the clauses with the run grammar's scanner
// (the syntax is shared) and gives them the registry's meaning.
func parseRegistryFilter(s string, g *registryGrammar) (Filter, error) {
	if err := checkText(s, "filter"); err != nil {
		return Filter{}, err
	}
	p := &filterParser{scanner: scanner{s: s}, g: experimentGrammar}
	raws, err := p.rawClauses(func() error {
		return errs.Invalid("Search filter contained multiple expression '%s'. Provide AND-ed expression list.", s)
	})
	if err != nil {
		return Filter{}, err
	}
	f := Filter{Clauses: make([]Clause, 0, len(raws))}
	for _, rc := range raws {
		c, err := g.resolve(rc)
		if err != nil {
			return Filter{}, err
		}
		f.Clauses = append(f.Clauses, c)
	}
	return f, nil
}

// ident splits an identifier into its kind and key: a bare name is an
// attribute; "tags.<key>" (or "tag.") a tag; "attribute(s).<name>" an
// attribute.
func (g *registryGrammar) ident(segs []identSeg, raw string) (kind, key string, err error) {
	if len(segs) == 1 {
		if segs[0].quote != 0 && strings.Contains(segs[0].text, ".") {
			return "", "", errs.Invalid("Invalid identifier '%s'. Use tags.`<key>` for tags with dots in their names", raw)
		}
		return KindAttribute, segs[0].text, nil
	}
	parts := make([]string, 0, len(segs)-1)
	for _, s := range segs[1:] {
		if s.quote != 0 && len(segs) > 2 {
			return "", "", invalidIdentifier(raw)
		}
		parts = append(parts, s.text)
	}
	key = strings.Join(parts, ".")
	switch trimBackticks(segs[0].raw) {
	case "tag", "tags":
		return KindTag, key, nil
	case "attribute", "attributes", "attr":
		return KindAttribute, key, nil
	}
	return "", "", errs.Invalid("Invalid entity type '%s'. Valid values are ['tag', 'attribute']", segs[0].raw)
}

func (g *registryGrammar) resolve(rc rawClause) (Clause, error) {
	kind, key, err := g.ident(rc.segs, rc.ident)
	if err != nil {
		return Clause{}, err
	}
	c := Clause{Kind: kind, Key: key, Op: rc.op}
	if rc.op == OpIsNull || rc.op == OpIsNotNull {
		return Clause{}, errs.Invalid("IS NULL / IS NOT NULL is not supported in model registry search filters")
	}
	v := rc.val
	if kind == KindAttribute {
		if _, ok := g.attrs[key]; !ok {
			return Clause{}, errs.Invalid("Invalid attribute key '%s' specified. Valid keys are '%s'", key, pySet(g.attrs))
		}
	}
	switch {
	case kind == KindAttribute && g.numeric[key]:
		if v.kind != valNumber {
			return Clause{}, errs.Invalid("Expected numeric value type for numeric attribute: %s. Found %s", key, v.raw)
		}
		c.Num = v.num
		if !numericOps[c.Op] {
			return Clause{}, errs.Invalid("Invalid comparator for attribute %s: %s", key, rc.op)
		}
		return c, nil
	case v.kind == valWord:
		return Clause{}, notQuoted(v.raw)
	case v.kind == valList:
		if kind != KindAttribute || key != "run_id" {
			return Clause{}, errs.Invalid("Only the 'run_id' attribute supports comparison with a list of quoted string values.")
		}
		if c.Op != OpIn {
			return Clause{}, errs.Invalid("Invalid comparator for attribute: %s", rc.op)
		}
		if c.List, err = parseList(v.raw); err != nil {
			return Clause{}, err
		}
		return c, nil
	case v.kind != valString:
		return Clause{}, errs.Invalid("Expected a quoted string value for %s (e.g. 'my-value'). Got value %s", kind, v.raw)
	}
	c.Str = v.str
	if !registryStrOps[c.Op] {
		if kind == KindTag {
			return Clause{}, errs.Invalid("Invalid comparator for tag: %s", rc.op)
		}
		return Clause{}, errs.Invalid("Invalid comparator for attribute: %s", rc.op)
	}
	return c, nil
}

// Order-by keys of registered models: name, and the last-update time under
// both of MLflow's spellings.
var registeredModelOrderKeys = map[string]string{
	"name":                   "name",
	"timestamp":              "last_updated_timestamp",
	"last_updated_timestamp": "last_updated_timestamp",
}

var modelVersionOrderKeys = map[string]string{
	"name":                   "name",
	"version_number":         "version_number",
	"creation_timestamp":     "creation_timestamp",
	"last_updated_timestamp": "last_updated_timestamp",
}

var registryOrderColumns = map[string]string{
	"name":                   "rm.name",
	"version_number":         "mv.version",
	"creation_timestamp":     "mv.creation_time",
	"last_updated_timestamp": "mv.last_updated_time",
}

// ParseRegisteredModelOrderBy parses one order_by element of
// search_registered_models: "name", "last_updated_timestamp DESC", ...
func ParseRegisteredModelOrderBy(s string) (OrderBy, error) {
	o, err := parseRegistryOrderBy(s)
	if err != nil {
		return o, err
	}
	canon, ok := registeredModelOrderKeys[o.Key]
	if !ok {
		return OrderBy{}, errs.Invalid("Invalid order by key '%s' specified.Valid keys are '['name', 'last_updated_timestamp']'", o.Key)
	}
	o.Key = canon
	return o, nil
}

// ParseModelVersionOrderBy parses one order_by element of
// search_model_versions: "version_number DESC", "name", ...
func ParseModelVersionOrderBy(s string) (OrderBy, error) {
	o, err := parseRegistryOrderBy(s)
	if err != nil {
		return o, err
	}
	canon, ok := modelVersionOrderKeys[o.Key]
	if !ok {
		return OrderBy{}, errs.Invalid("Invalid order by key '%s' specified. Valid keys are %s", o.Key, pySet(modelVersionOrderKeys))
	}
	o.Key = canon
	return o, nil
}

// parseRegistryOrderBy reads "[attribute.]<key> [ASC|DESC]".
func parseRegistryOrderBy(s string) (OrderBy, error) {
	if err := checkText(s, "order_by clause"); err != nil {
		return OrderBy{}, err
	}
	bad := errs.Invalid("Invalid order_by clause '%s'. Could not be parsed.", s)
	p := &scanner{s: strings.TrimSpace(s)}
	if p.eof() || p.numberEnd(0) > 0 {
		return OrderBy{}, bad
	}
	segs, raw, err := p.scanIdent()
	if err != nil || segs == nil {
		return OrderBy{}, bad
	}
	asc := true
	if !p.eof() {
		at := p.i
		p.skipSpace()
		if p.i == at {
			return OrderBy{}, bad
		}
		switch strings.ToLower(p.scanWord()) {
		case "asc":
		case "desc":
			asc = false
		default:
			return OrderBy{}, errs.Invalid("Invalid ordering key in order_by clause '%s'.", s)
		}
		if p.skipSpace(); !p.eof() {
			return OrderBy{}, bad
		}
	}
	kind, key, err := modelVersionGrammar.ident(segs, raw)
	if err != nil {
		return OrderBy{}, err
	}
	if kind != KindAttribute {
		return OrderBy{}, errs.Invalid("Invalid order_by entity: %s", kind)
	}
	return OrderBy{Kind: kind, Key: key, Asc: asc}, nil
}

// CompileRegisteredModels compiles a registered-model filter and order_by
// list. Ties are broken by name ascending, as MLflow does, and the name
// then decides, so paging is stable.
func CompileRegisteredModels(f Filter, orderBy []OrderBy, d Dialect) (SQL, error) {
	out, err := compileRegistryWhere(f, registeredModelGrammar, d)
	if err != nil {
		return SQL{}, err
	}
	seen := map[string]bool{}
	var terms []string
	for _, o := range orderBy {
		if seen[o.Key] {
			return SQL{}, errs.Invalid("`order_by` contains duplicate fields: %s", o.Key)
		}
		seen[o.Key] = true
		col := "rm.last_updated_time"
		if o.Key == "name" {
			col = "rm.name" + collate(d)
		}
		terms = append(terms, col+direction(o.Asc))
	}
	if !seen["name"] {
		terms = append(terms, "rm.name"+collate(d))
	}
	out.OrderBy = strings.Join(terms, ", ")
	return out, nil
}

// CompileModelVersions compiles a model-version filter and order_by list.
// Without an order, versions come newest-updated first, then by name and
// version number descending, as in MLflow; name and version always end
// the list, so paging is stable.
func CompileModelVersions(f Filter, orderBy []OrderBy, d Dialect) (SQL, error) {
	out, err := compileRegistryWhere(f, modelVersionGrammar, d)
	if err != nil {
		return SQL{}, err
	}
	if len(orderBy) == 0 {
		orderBy = []OrderBy{{Kind: KindAttribute, Key: "last_updated_timestamp"}, {Kind: KindAttribute, Key: "name", Asc: true}, {Kind: KindAttribute, Key: "version_number"}}
	}
	seen := map[string]bool{}
	var terms []string
	for _, o := range orderBy {
		if seen[o.Key] {
			return SQL{}, errs.Invalid("`order_by` contains duplicate fields: %s", o.Key)
		}
		seen[o.Key] = true
		col := registryOrderColumns[o.Key]
		if o.Key == "name" {
			col += collate(d)
		}
		terms = append(terms, col+direction(o.Asc))
	}
	if !seen["name"] {
		terms = append(terms, "rm.name"+collate(d))
	}
	if !seen["version_number"] {
		terms = append(terms, "mv.version DESC")
	}
	out.OrderBy = strings.Join(terms, ", ")
	return out, nil
}

func direction(asc bool) string {
	if asc {
		return ""
	}
	return " DESC"
}

func compileRegistryWhere(f Filter, g *registryGrammar, d Dialect) (SQL, error) {
	b := &builder{d: d}
	for i, c := range f.Clauses {
		if i > 0 {
			b.WriteString(" AND ")
		}
		switch c.Kind {
		case KindAttribute:
			col, ok := g.attrs[c.Key]
			if !ok {
				return SQL{}, errs.Invalid("Invalid attribute key '%s' specified. Valid keys are '%s'", c.Key, pySet(g.attrs))
			}
			var err error
			if g.numeric[c.Key] {
				err = b.numCmp(col, c, true)
			} else {
				err = b.textCmp(col, c)
			}
			if err != nil {
				return SQL{}, err
			}
		case KindTag:
			if g.versions {
				b.WriteString("EXISTS (SELECT 1 FROM model_version_tags t WHERE t.model_id = mv.model_id AND t.version = mv.version AND t.key = ")
			} else {
				// An uncorrelated IN rather than EXISTS: SQLite runs an
				// EXISTS once per model in name order, so a filter few
				// models match walked all of them (11 ms at 10,000 models,
				// 0.5 ms as IN; docs/benchmarks.md). PostgreSQL plans the
				// two alike.
				b.WriteString("rm.model_id IN (SELECT t.model_id FROM registered_model_tags t WHERE t.key = ")
			}
			b.arg(c.Key)
			b.WriteString(" AND ")
			if err := b.textCmp("t.value", c); err != nil {
				return SQL{}, err
			}
			b.WriteString(")")
		default:
			return SQL{}, errs.Invalid("Invalid search expression type '%s'", c.Kind)
		}
	}
	return SQL{Where: b.String(), WhereArgs: b.args}, nil
}
