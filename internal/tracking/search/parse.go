package search

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/slipwayml/slipway/internal/errs"
)

// grammar holds what differs between the run and the experiment grammars.
type grammar struct {
	experiments bool
	// filterKeys and orderKeys map the attribute names MLflow accepts, as
	// typed, to the canonical name.
	filterKeys map[string]string
	orderKeys  map[string]string
	// numeric lists the canonical attribute names compared as numbers.
	numeric map[string]bool
}

var runGrammar = &grammar{
	filterKeys: map[string]string{
		"artifact_uri": "artifact_uri",
		"end_time":     "end_time",
		"run_id":       "run_id",
		"run_name":     "run_name",
		"start_time":   "start_time",
		"status":       "status",
		"user_id":      "user_id",
		"created":      "start_time",
		"Created":      "start_time",
		"run name":     "run_name",
		"Run name":     "run_name",
		"Run Name":     "run_name",
	},
	// MLflow orders by the "created" aliases but not by the "run name" ones.
	orderKeys: map[string]string{
		"artifact_uri": "artifact_uri",
		"end_time":     "end_time",
		"run_id":       "run_id",
		"run_name":     "run_name",
		"start_time":   "start_time",
		"status":       "status",
		"user_id":      "user_id",
		"created":      "start_time",
		"Created":      "start_time",
	},
	numeric: map[string]bool{"start_time": true, "end_time": true},
}

var experimentGrammar = &grammar{
	experiments: true,
	filterKeys: map[string]string{
		"name":             "name",
		"creation_time":    "creation_time",
		"last_update_time": "last_update_time",
	},
	orderKeys: map[string]string{
		"name":             "name",
		"experiment_id":    "experiment_id",
		"creation_time":    "creation_time",
		"last_update_time": "last_update_time",
	},
	numeric: map[string]bool{"creation_time": true, "last_update_time": true, "experiment_id": true},
}

// Entity prefixes MLflow accepts for runs, and what each one means.
var runEntities = map[string]string{
	"metric": KindMetric, "metrics": KindMetric,
	"parameter": KindParam, "parameters": KindParam, "param": KindParam, "params": KindParam,
	"tag": KindTag, "tags": KindTag,
	"attribute": KindAttribute, "attributes": KindAttribute, "attr": KindAttribute, "run": KindAttribute,
	"dataset": KindDataset, "datasets": KindDataset,
}

var datasetKeys = map[string]bool{"name": true, "digest": true, "context": true}

// Comparators allowed per kind of operand, as MLflow's SearchUtils lists them.
var (
	numericOps       = opSet(OpEq, OpNe, OpLt, OpLe, OpGt, OpGe)
	paramTagOps      = opSet(OpEq, OpNe, OpLike, OpILike)
	stringAttrOps    = opSet(OpEq, OpNe, OpLike, OpILike, OpIn, OpNotIn)
	datasetOps       = stringAttrOps
	experimentStrOps = paramTagOps
)

func opSet(ops ...string) map[string]bool {
	m := make(map[string]bool, len(ops))
	for _, op := range ops {
		m[op] = true
	}
	return m
}

// ParseRunFilter parses a search_runs filter string. An empty or all-blank
// string is an empty filter.
func ParseRunFilter(s string) (Filter, error) { return parseFilter(s, runGrammar) }

// ParseExperimentFilter parses a search_experiments filter string.
func ParseExperimentFilter(s string) (Filter, error) { return parseFilter(s, experimentGrammar) }

// ParseRunOrderBy parses one element of a search_runs order_by list, such
// as "metrics.acc DESC" or "attributes.start_time".
func ParseRunOrderBy(s string) (OrderBy, error) { return parseOrderBy(s, runGrammar) }

// ParseExperimentOrderBy parses one element of a search_experiments
// order_by list, such as "name ASC".
func ParseExperimentOrderBy(s string) (OrderBy, error) { return parseOrderBy(s, experimentGrammar) }

// valueKind classifies the operand as the scanner found it; whether it suits
// the identifier is decided afterwards, as MLflow does, so that its messages
// ("Expected numeric value type for metric...") can be matched.
type valueKind int

const (
	valNone   valueKind = iota // IS NULL / IS NOT NULL
	valString                  // quoted text
	valNumber
	valWord // an unquoted name, which MLflow calls an unquoted string
	valList // a parenthesised list, checked only once the key is known
)

type rawValue struct {
	kind valueKind
	raw  string
	str  string
	num  float64
}

type rawClause struct {
	segs  []identSeg
	ident string
	op    string // canonical for words; as typed for symbols
	val   rawValue
}

// Words that end a clause rather than being a value, so that "status = true"
// is rejected as malformed, as in MLflow where sqlparse reads them as
// keywords.
var reservedValues = map[string]bool{
	"AND": true, "OR": true, "NOT": true, "IN": true, "IS": true, "NULL": true,
	"TRUE": true, "FALSE": true, "LIKE": true, "ILIKE": true,
}

func checkText(s, what string) error {
	if !utf8.ValidString(s) {
		return errs.Invalid("Invalid %s %q: not valid UTF-8", what, s)
	}
	if strings.IndexByte(s, 0) >= 0 {
		return errs.Invalid("Invalid %s %q: contains a NUL character", what, s)
	}
	return nil
}

// filterParser reads a whole filter string. The syntax of every clause is
// checked before the meaning of any, as MLflow reports malformed clauses
// before unknown keys or wrong value types.
type filterParser struct {
	scanner
	g *grammar
}

func (p *filterParser) invalidClause(text string) error {
	text = strings.TrimSpace(text)
	if p.g.experiments {
		return errs.Invalid("Invalid clause(s) in filter string: %s", text)
	}
	return errs.Invalid("Invalid clause(s) in filter string: '%s'", text)
}

// invalidFrom reports the text from from up to and including the token at
// at, which is where the clause stopped making sense.
func (p *filterParser) invalidFrom(from, at int) error {
	return p.invalidClause(p.s[from:at] + p.tokenAt(at))
}

// rawClauses reads AND-joined clauses up to the end of the text. A ';'
// before the end is reported by semicolon: the run and registry grammars
// word that error differently, as MLflow does.
func (p *filterParser) rawClauses(semicolon func() error) ([]rawClause, error) {
	var raws []rawClause
	for {
		p.skipSpace()
		if p.eof() {
			return raws, nil
		}
		if p.s[p.i] == ';' {
			return nil, semicolon()
		}
		// MLflow accepts a stray AND (leading, trailing or doubled) because
		// sqlparse sees it as a harmless keyword; clients that join clauses
		// with " AND " rely on that, so it is a separator here too.
		if p.atAnd() {
			continue
		}
		rc, err := p.clause()
		if err != nil {
			return nil, err
		}
		raws = append(raws, rc)
		p.skipSpace()
		if p.eof() || p.s[p.i] == ';' {
			continue
		}
		if !p.atAnd() {
			return nil, p.invalidFrom(p.i, p.i)
		}
	}
}

func parseFilter(s string, g *grammar) (Filter, error) {
	if err := checkText(s, "filter"); err != nil {
		return Filter{}, err
	}
	p := &filterParser{scanner: scanner{s: s}, g: g}
	raws, err := p.rawClauses(func() error {
		if strings.TrimSpace(p.s[p.i+1:]) != "" {
			return errs.Invalid("Search filter contained multiple expression '%s'. Provide AND-ed expression list.", s)
		}
		return p.invalidClause(";")
	})
	if err != nil {
		return Filter{}, err
	}
	f := Filter{Clauses: make([]Clause, 0, len(raws))}
	for _, rc := range raws {
		c, err := p.g.resolveClause(rc)
		if err != nil {
			return Filter{}, err
		}
		f.Clauses = append(f.Clauses, c)
	}
	return f, nil
}

// atAnd consumes the keyword AND (any case) if it is at the cursor.
func (p *filterParser) atAnd() bool {
	q := p.scanner
	w := q.scanWord()
	if !strings.EqualFold(w, "AND") || q.peek() == '.' {
		return false
	}
	p.scanner = q
	return true
}

// clause reads "identifier comparator value".
func (p *filterParser) clause() (rawClause, error) {
	start := p.i
	if r := p.peek(); r == '\'' || p.numberEnd(p.i) > p.i {
		// MLflow: a number or string where the identifier belongs.
		return rawClause{}, errs.Invalid("Invalid comparison clause. Expected 'Identifier' found '%s'", p.tokenAt(p.i))
	}
	segs, ident, err := p.scanIdent()
	var ut errUnterminated
	switch {
	case errors.As(err, &ut):
		return rawClause{}, p.invalidClause(p.s[start:])
	case err != nil:
		// A dot with no key after it, as in "metrics. > 1" or "params.'a'".
		return rawClause{}, p.invalidFrom(start, p.i)
	case segs == nil:
		return rawClause{}, p.invalidFrom(start, p.i)
	}
	rc := rawClause{segs: segs, ident: ident}
	p.skipSpace()
	if rc.op, err = p.comparator(start); err != nil {
		return rawClause{}, err
	}
	if rc.op == OpIsNull || rc.op == OpIsNotNull {
		return rc, nil
	}
	p.skipSpace()
	if rc.val, err = p.value(start, rc.op); err != nil {
		return rawClause{}, err
	}
	return rc, nil
}

func (p *filterParser) comparator(start int) (string, error) {
	at := p.i
	r := p.peek()
	if isOpRune(r) {
		for !p.eof() && isOpRune(p.peek()) {
			p.i++
		}
		return p.s[at:p.i], nil
	}
	if !isWordRune(r) {
		return "", p.invalidFrom(start, at)
	}
	switch w := strings.ToUpper(p.scanWord()); w {
	case OpLike, OpILike, OpIn:
		return w, nil
	case "NOT":
		p.skipSpace()
		next := p.i
		if strings.ToUpper(p.scanWord()) == "IN" {
			return OpNotIn, nil
		}
		return "", p.invalidFrom(start, next)
	case "IS":
		p.skipSpace()
		next := p.i
		switch strings.ToUpper(p.scanWord()) {
		case "NULL":
			return OpIsNull, nil
		case "NOT":
			p.skipSpace()
			next = p.i
			if strings.ToUpper(p.scanWord()) == "NULL" {
				return OpIsNotNull, nil
			}
		}
		return "", p.invalidFrom(start, next)
	}
	return "", p.invalidFrom(start, at)
}

func (p *filterParser) value(start int, op string) (rawValue, error) {
	at := p.i
	r := p.peek()
	if (op == OpIn || op == OpNotIn) && r != '(' {
		return rawValue{}, p.invalidFrom(start, at)
	}
	switch {
	case r == '\'' || r == '"':
		str, raw, ok := p.scanQuoted(byte(r))
		if !ok {
			return rawValue{}, p.invalidClause(p.s[start:])
		}
		return rawValue{kind: valString, raw: raw, str: str}, nil
	case r == '(':
		end, ok := p.listEnd(at)
		if !ok {
			return rawValue{}, p.invalidClause(p.s[start:])
		}
		p.i = end
		return rawValue{kind: valList, raw: p.s[at:end]}, nil
	case p.numberEnd(at) > at:
		text, v, ok := p.scanNumber()
		if !ok {
			return rawValue{}, p.invalidFrom(start, at)
		}
		return rawValue{kind: valNumber, raw: text, num: v}, nil
	case isWordRune(r) || r == '`':
		segs, raw, err := p.scanIdent()
		if err != nil || segs == nil {
			return rawValue{}, p.invalidClause(p.s[start:])
		}
		if len(segs) == 1 && segs[0].quote == 0 && reservedValues[strings.ToUpper(raw)] {
			return rawValue{}, p.invalidFrom(start, at)
		}
		return rawValue{kind: valWord, raw: raw}, nil
	}
	return rawValue{}, p.invalidFrom(start, at)
}

// listEnd finds the parenthesis closing the one at i, skipping quoted text.
func (p *filterParser) listEnd(i int) (int, bool) {
	depth := 0
	for j := i; j < len(p.s); j++ {
		switch c := p.s[j]; c {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return j + 1, true
			}
		case '\'', '"', '`':
			q := &scanner{s: p.s, i: j}
			if _, _, ok := q.scanQuoted(c); !ok {
				return 0, false
			}
			j = q.i - 1
		}
	}
	return 0, false
}

func invalidIdentifier(ident string) error {
	return errs.Invalid("Invalid identifier '%s'. Columns should be specified as "+
		"'attribute.<key>', 'metric.<key>', 'tag.<key>', 'dataset.<key>', or 'param.'.", ident)
}

// ident is a resolved identifier.
type ident struct {
	kind  string
	typed string // key as typed, for messages
	key   string // canonical key
}

// resolveIdent gives an identifier its meaning. It reproduces MLflow's
// _get_identifier, which splits the identifier's text at its first dot:
// that is why a whole identifier in backticks, `metrics.acc`, is refused as
// the entity type '`metrics'.
func (g *grammar) resolveIdent(segs []identSeg, raw string, keys map[string]string) (ident, error) {
	var entity string
	var key string
	switch {
	case len(segs) == 1 && segs[0].quote == 0:
		key = segs[0].text
	case len(segs) == 1:
		if dot := strings.IndexByte(raw, '.'); dot >= 0 {
			entity = raw[:dot]
			break
		}
		key = segs[0].text
	default:
		entity = segs[0].raw
		if len(segs) == 2 {
			key = segs[1].text
			break
		}
		parts := make([]string, 0, len(segs)-1)
		for _, s := range segs[1:] {
			if s.quote != 0 {
				// MLflow would keep the quotes as part of the key, which
				// can never be what was meant.
				return ident{}, invalidIdentifier(raw)
			}
			parts = append(parts, s.text)
		}
		key = strings.Join(parts, ".")
	}

	kind := KindAttribute
	if entity != "" || len(segs) > 1 {
		if g.experiments {
			switch entity {
			case "attribute":
				kind = KindAttribute
			case "tag", "tags":
				kind = KindTag
			default:
				return ident{}, errs.Invalid("Invalid entity type '%s'. Valid entity types are ('attribute', 'tag', 'tags')", entity)
			}
		} else {
			e := trimBackticks(entity)
			k, ok := runEntities[e]
			if !ok {
				return ident{}, errs.Invalid("Invalid entity type '%s'. Valid values are ['metric', 'parameter', 'tag', 'attribute', 'dataset']", e)
			}
			kind = k
		}
	}
	id := ident{kind: kind, typed: key, key: key}
	switch kind {
	case KindAttribute:
		canon, ok := keys[key]
		if !ok {
			return ident{}, errs.Invalid("Invalid attribute key '%s' specified. Valid keys are '%s'", key, pySet(keys))
		}
		id.key = canon
	case KindDataset:
		if !datasetKeys[key] {
			return ident{}, errs.Invalid("Invalid dataset key '%s' specified. Valid keys are '%s'", key, pySet(datasetKeys))
		}
	}
	return id, nil
}

func trimBackticks(s string) string {
	if len(s) >= 2 && s[0] == '`' && s[len(s)-1] == '`' {
		return s[1 : len(s)-1]
	}
	return s
}

// pySet renders keys the way MLflow's messages print a Python set, sorted so
// that messages are stable.
func pySet[V any](m map[string]V) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return "{'" + strings.Join(keys, "', '") + "'}"
}

func notQuoted(raw string) error {
	return errs.Invalid("Parameter value is either not quoted or unidentified quote types used for string value %s. Use either single or double quotes.", raw)
}

func invalidComparator(op string, valid map[string]bool) error {
	return errs.Invalid("Invalid comparator '%s' not one of '%s'", op, pySet(valid))
}

// resolveClause checks a clause the way MLflow does once the syntax is
// known good: identifier first, then the value's type, then the comparator.
func (g *grammar) resolveClause(rc rawClause) (Clause, error) {
	id, err := g.resolveIdent(rc.segs, rc.ident, g.filterKeys)
	if err != nil {
		return Clause{}, err
	}
	c := Clause{Kind: id.kind, Key: id.key, Op: rc.op}

	if rc.op == OpIsNull || rc.op == OpIsNotNull {
		if g.experiments {
			return Clause{}, errs.Invalid("IS NULL / IS NOT NULL is not supported in experiment search filters")
		}
		if id.kind != KindTag && id.kind != KindParam {
			return Clause{}, errs.Invalid("IS NULL / IS NOT NULL is only supported for tags and params, not for '%s' '%s'", id.kind, id.typed)
		}
		return c, nil
	}

	v := rc.val
	var valid map[string]bool
	switch {
	case id.kind == KindMetric:
		if v.kind != valNumber {
			return Clause{}, errs.Invalid("Expected numeric value type for metric. Found %s", v.raw)
		}
		c.Num = v.num
		valid = numericOps
	case id.kind == KindParam || id.kind == KindTag:
		switch v.kind {
		case valString:
			c.Str = v.str
		case valWord:
			return Clause{}, notQuoted(v.raw)
		default:
			return Clause{}, errs.Invalid("Expected a quoted string value for %s (e.g. 'my-value'). Got value %s", id.kind, v.raw)
		}
		valid = paramTagOps
	case id.kind == KindAttribute && g.numeric[id.key]:
		if v.kind != valNumber {
			return Clause{}, errs.Invalid("Expected numeric value type for numeric attribute: %s. Found %s", id.typed, v.raw)
		}
		c.Num = v.num
		valid = numericOps
	case id.kind == KindAttribute:
		switch v.kind {
		case valString:
			c.Str = v.str
		case valWord:
			return Clause{}, notQuoted(v.raw)
		case valList:
			if id.key != "run_id" {
				return Clause{}, errs.Invalid("Only the 'run_id' attribute supports comparison with a list of quoted string values.")
			}
			if c.List, err = parseList(v.raw); err != nil {
				return Clause{}, err
			}
		default:
			return Clause{}, errs.Invalid("Expected a quoted string value for attributes. Got value %s", v.raw)
		}
		valid = stringAttrOps
		if g.experiments {
			valid = experimentStrOps
		}
	case id.kind == KindDataset:
		switch v.kind {
		case valString:
			c.Str = v.str
		case valWord:
			return Clause{}, notQuoted(v.raw)
		case valList:
			if c.List, err = parseList(v.raw); err != nil {
				return Clause{}, err
			}
		default:
			return Clause{}, errs.Invalid("Expected a quoted string value for dataset attributes. Got value %s", v.raw)
		}
		valid = datasetOps
	}

	if !valid[c.Op] {
		return Clause{}, invalidComparator(rc.op, valid)
	}
	isList := c.Op == OpIn || c.Op == OpNotIn
	if (v.kind == valList) != isList {
		// Only reachable as "key = (...)": IN without a list does not parse.
		return Clause{}, errs.Invalid("Invalid comparator '%s' for a list of values; use IN or NOT IN", rc.op)
	}
	return c, nil
}

// parseList reads the strings of "('a', "b")". MLflow reads only
// single-quoted items here; double-quoted ones are accepted too, as they are
// everywhere else a string is.
func parseList(raw string) ([]string, error) {
	p := &scanner{s: raw[1 : len(raw)-1]}
	var items []string
	wellFormed := true
	wantItem := true
	for {
		p.skipSpace()
		if p.eof() {
			break
		}
		switch r := p.peek(); {
		case r == '\'' || r == '"':
			s, _, ok := p.scanQuoted(byte(r))
			if !ok {
				return nil, errs.Invalid("While parsing a list in the query, expected string value, punctuation, or whitespace, but got different type in list: %s", raw)
			}
			if !wantItem {
				wellFormed = false
			}
			items = append(items, s)
			wantItem = false
		case r == ',':
			p.i++
			if wantItem {
				wellFormed = false
			}
			wantItem = true
		default:
			return nil, errs.Invalid("While parsing a list in the query, expected string value, punctuation, or whitespace, but got different type in list: %s", raw)
		}
	}
	if len(items) == 0 && wellFormed {
		return nil, errs.Invalid("While parsing a list in the query, expected a non-empty list of string values, but got empty list")
	}
	if !wellFormed || wantItem {
		return nil, errs.Invalid("While parsing a list in the query, expected a non-empty list of string values, but got ill-formed list.")
	}
	return items, nil
}

// parseOrderBy reads "<identifier> [ASC|DESC]". Like MLflow it refuses
// surrounding blanks and anything after the direction.
func parseOrderBy(s string, g *grammar) (OrderBy, error) {
	if err := checkText(s, "order_by clause"); err != nil {
		return OrderBy{}, err
	}
	bad := errs.Invalid("Invalid order_by clause '%s'. Could not be parsed.", s)
	p := &scanner{s: s}
	if p.numberEnd(0) > 0 {
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
		if p.i == at || p.eof() {
			return OrderBy{}, bad
		}
		dir := p.scanWord()
		if dir == "" || !p.eof() {
			return OrderBy{}, bad
		}
		switch strings.ToLower(dir) {
		case "asc":
		case "desc":
			asc = false
		default:
			return OrderBy{}, errs.Invalid("Invalid ordering key in order_by clause '%s'.", s)
		}
	}
	id, err := g.resolveIdent(segs, raw, g.orderKeys)
	if err != nil {
		return OrderBy{}, err
	}
	if g.experiments && id.kind != KindAttribute {
		return OrderBy{}, errs.Invalid("Invalid order_by entity: %s", id.kind)
	}
	if id.kind == KindDataset {
		return OrderBy{}, errs.Invalid("Invalid identifier type '%s'", id.kind)
	}
	return OrderBy{Kind: id.kind, Key: id.key, Asc: asc}, nil
}

// field renders an order-by element in the grammar it was parsed from, for
// messages.
func (o OrderBy) field() string {
	dir := "ASC"
	if !o.Asc {
		dir = "DESC"
	}
	return fmt.Sprintf("%s.`%s` %s", o.Kind, o.Key, dir)
}
