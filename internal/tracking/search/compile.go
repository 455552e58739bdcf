package search

import (
	"fmt"
	"math"
	"strings"

	"github.com/slipwayml/slipway/internal/errs"
)

// datasetContextTag is the dataset-input tag that datasets.context filters
// on (MLflow's MLFLOW_DATASET_CONTEXT).
const datasetContextTag = "mlflow.data.context"

// Run attribute columns, by canonical attribute name.
var runColumns = map[string]string{
	"run_id":       "r.run_uuid",
	"run_name":     "r.name",
	"user_id":      "r.user_id",
	"status":       "r.status",
	"artifact_uri": "r.artifact_uri",
	"start_time":   "r.start_time",
	"end_time":     "r.end_time",
}

var experimentColumns = map[string]string{
	"name":             "e.name",
	"experiment_id":    "e.experiment_id",
	"creation_time":    "e.creation_time",
	"last_update_time": "e.last_update_time",
}

var sqlOps = map[string]string{
	OpEq: "=", OpNe: "<>", OpLt: "<", OpLe: "<=", OpGt: ">", OpGe: ">=",
}

// builder accumulates one SQL fragment and its arguments.
type builder struct {
	strings.Builder
	args []any
	d    Dialect
}

func (b *builder) arg(v any) {
	b.WriteByte('?')
	b.args = append(b.args, v)
}

// textCmp writes "col <op> operand" for a string comparison.
//
// LIKE patterns have no escape character on either dialect: SQLite has none
// by default and an empty ESCAPE switches off PostgreSQL's backslash. So a
// pattern means the same on both (what MLflow's default SQLite store makes
// of it) and a trailing backslash cannot make PostgreSQL fail. LIKE is
// case-sensitive: PostgreSQL's is, and Slipway opens SQLite with
// case_sensitive_like; ILIKE lower-cases both sides on SQLite.
func (b *builder) textCmp(col string, c Clause) error {
	switch c.Op {
	case OpEq, OpNe:
		b.WriteString(col + " " + sqlOps[c.Op] + " ")
		b.arg(c.Str)
	case OpLike:
		b.WriteString(col + " LIKE ")
		b.arg(c.Str)
		if b.d == Postgres {
			b.WriteString(" ESCAPE ''")
		}
	case OpILike:
		if b.d == Postgres {
			b.WriteString(col + " ILIKE ")
			b.arg(c.Str)
			b.WriteString(" ESCAPE ''")
		} else {
			b.WriteString("LOWER(" + col + ") LIKE LOWER(")
			b.arg(c.Str)
			b.WriteString(")")
		}
	case OpIn, OpNotIn:
		if len(c.List) == 0 {
			return errs.Invalid("%s needs a non-empty list of values", c.Op)
		}
		b.WriteString(col)
		if c.Op == OpNotIn {
			b.WriteString(" NOT")
		}
		b.WriteString(" IN (")
		for i, v := range c.List {
			if i > 0 {
				b.WriteString(", ")
			}
			b.arg(v)
		}
		b.WriteString(")")
	default:
		return errs.Invalid("Invalid comparator '%s' for %s '%s'", c.Op, c.Kind, c.Key)
	}
	return nil
}

// numCmp writes "col <op> operand" for a numeric comparison. Integer
// columns get an integer argument when the value is one, because PostgreSQL
// types the placeholder from the column and would refuse 1.5 for a BIGINT;
// other values are cast so the comparison happens in floating point.
func (b *builder) numCmp(col string, c Clause, intCol bool) error {
	op, ok := sqlOps[c.Op]
	if !ok {
		return errs.Invalid("Invalid comparator '%s' for %s '%s'", c.Op, c.Kind, c.Key)
	}
	b.WriteString(col + " " + op + " ")
	v := c.Num
	switch {
	case intCol && v == math.Trunc(v) && math.Abs(v) < 1<<63:
		b.arg(int64(v))
	case intCol:
		b.WriteString("CAST(")
		b.arg(v)
		b.WriteString(" AS DOUBLE PRECISION)")
	default:
		b.arg(v)
	}
	return nil
}

// CompileRuns compiles a run filter and order_by list for the query shown in
// the package comment (outer alias r).
//
// Matching follows MLflow: a metric, param or tag clause only matches runs
// that have the key, so "!=" does not match runs missing it; a missing
// end_time matches nothing. Metric clauses see the latest value, and NaN
// compares as IEEE does (only "!=" holds) rather than as the 0 it is stored
// as. Ordering follows _get_orderby_clauses: for a metric, real values
// first, then NaN, then runs without it; for anything else, missing values
// last; then start_time DESC (unless ordered by already) and run_uuid.
func CompileRuns(f Filter, orderBy []OrderBy, d Dialect) (SQL, error) {
	var out SQL
	w := &builder{d: d}
	for i, c := range f.Clauses {
		if i > 0 {
			w.WriteString(" AND ")
		}
		if err := w.runPredicate(c); err != nil {
			return SQL{}, err
		}
	}
	out.Where, out.WhereArgs = w.String(), w.args

	j := &builder{d: d}
	var terms []string
	seen := make(map[[2]string]bool)
	// Where the first order_by's join ends, for Tiers.
	firstJoinLen, firstJoinArgs := 0, 0
	for i, o := range orderBy {
		if i == 1 {
			firstJoinLen, firstJoinArgs = j.Len(), len(j.args)
		}
		key := o.Key
		if o.Kind == KindAttribute {
			canon, ok := runGrammar.orderKeys[key]
			if !ok {
				return SQL{}, errs.Invalid("Invalid attribute key '%s' specified. Valid keys are '%s'", key, pySet(runGrammar.orderKeys))
			}
			key = canon
		}
		field := [2]string{o.Kind, key}
		if seen[field] {
			return SQL{}, errs.Invalid("`order_by` contains duplicate fields: %s", pyOrderList(orderBy))
		}
		seen[field] = true
		dir := ""
		if !o.Asc {
			dir = " DESC"
		}
		alias := fmt.Sprintf("o%d", i+1)
		switch o.Kind {
		case KindMetric:
			j.join("latest_metrics", alias, "run_uuid", "r.run_uuid", key)
			// The CASE ranks presence, independent of direction, because
			// SQLite and PostgreSQL disagree on where NULLs sort.
			terms = append(terms,
				"CASE WHEN "+alias+".is_nan = 1 THEN 1 WHEN "+alias+".run_uuid IS NULL THEN 2 ELSE 0 END",
				alias+".value"+dir)
		case KindParam, KindTag:
			table := "params"
			if o.Kind == KindTag {
				table = "tags"
			}
			j.join(table, alias, "run_uuid", "r.run_uuid", key)
			terms = append(terms,
				"CASE WHEN "+alias+".value IS NULL THEN 1 ELSE 0 END",
				alias+".value"+collate(d)+dir)
		case KindAttribute:
			col := runColumns[key]
			switch key {
			case "end_time":
				terms = append(terms, "CASE WHEN "+col+" IS NULL THEN 1 ELSE 0 END", col+dir)
			case "start_time":
				terms = append(terms, col+dir)
			default:
				terms = append(terms, col+collate(d)+dir)
			}
		default:
			return SQL{}, errs.Invalid("Invalid identifier type '%s'", o.Kind)
		}
	}
	if !seen[[2]string{KindAttribute, "start_time"}] {
		terms = append(terms, "r.start_time DESC")
	}
	if !seen[[2]string{KindAttribute, "run_id"}] {
		// Left in the column's own collation so the runs_by_experiment
		// index can still serve the default order.
		terms = append(terms, "r.run_uuid")
	}
	out.Joins, out.JoinArgs = j.String(), j.args
	out.OrderBy = strings.Join(terms, ", ")
	if len(orderBy) > 0 && orderBy[0].Kind == KindMetric {
		if len(orderBy) == 1 {
			firstJoinLen, firstJoinArgs = j.Len(), len(j.args)
		}
		out.Tiers = metricTiers(orderBy[0], terms[1], terms[2:], j.String()[firstJoinLen:], j.args[firstJoinArgs:], d)
	}
	return out, nil
}

// metricTiers splits a search whose first order_by is metric o into the
// three tiers of its CASE term (see SQL.Tiers). value is the term ordering
// o1 by value, rest the terms after it, restJoins and restArgs the joins
// (with a leading space) the rest need. Within a tier the CASE term is
// constant, so each tier's order is the rest of the full order, and o1.value
// is kept in the NaN tier (where it is always the stored 0) only so that the
// term lists stay the same.
//
// On SQLite the join is a CROSS JOIN, which SQLite takes as an order: with
// bound parameters its planner otherwise starts from runs_by_experiment and
// sorts every match, and the split gains nothing (docs/benchmarks.md). The
// price is an index walk over every run that has the metric, whatever its
// experiment, until the page is full.
func metricTiers(o OrderBy, value string, rest []string, restJoins string, restArgs []any, d Dialect) []Tier {
	if len(restArgs) == 0 {
		restArgs = nil
	}
	join := " JOIN "
	if d == SQLite {
		join = " CROSS JOIN "
	}
	inner := "latest_metrics o1" + join + "runs r ON r.run_uuid = o1.run_uuid" + restJoins
	ordered := strings.Join(append([]string{value}, rest...), ", ")
	return []Tier{
		// is_nan <> 1, not = 0: the CASE puts every other value in tier 0.
		{From: inner, FromArgs: restArgs, Cond: "o1.key = ? AND o1.is_nan <> 1", CondArgs: []any{o.Key}, OrderBy: ordered},
		{From: inner, FromArgs: restArgs, Cond: "o1.key = ? AND o1.is_nan = 1", CondArgs: []any{o.Key}, OrderBy: ordered},
		{From: "runs r" + restJoins, FromArgs: restArgs,
			Cond:     "NOT EXISTS (SELECT 1 FROM latest_metrics o1 WHERE o1.run_uuid = r.run_uuid AND o1.key = ?)",
			CondArgs: []any{o.Key}, OrderBy: strings.Join(rest, ", ")},
	}
}

// join writes a LEFT JOIN on (fk, key), which is the primary key of params,
// tags and latest_metrics, so it adds at most one row per run.
func (b *builder) join(table, alias, fk, outer, key string) {
	if b.Len() > 0 {
		b.WriteByte(' ')
	}
	fmt.Fprintf(b, "LEFT JOIN %s %s ON %s.%s = %s AND %s.key = ", table, alias, alias, fk, outer, alias)
	b.arg(key)
}

// collate makes text sort by code point on PostgreSQL, as SQLite's BINARY
// collation does, so that paging is the same whatever the database's locale.
func collate(d Dialect) string {
	if d == Postgres {
		return ` COLLATE "C"`
	}
	return ""
}

func (b *builder) runPredicate(c Clause) error {
	switch c.Kind {
	case KindMetric:
		b.WriteString("EXISTS (SELECT 1 FROM latest_metrics m WHERE m.run_uuid = r.run_uuid AND m.key = ")
		b.arg(c.Key)
		op, ok := sqlOps[c.Op]
		if !ok {
			return invalidComparator(c.Op, numericOps)
		}
		if c.Op == OpNe {
			b.WriteString(" AND (m.is_nan = 1 OR m.value <> ")
			b.arg(c.Num)
			b.WriteString("))")
			return nil
		}
		b.WriteString(" AND m.is_nan = 0 AND m.value " + op + " ")
		b.arg(c.Num)
		b.WriteString(")")
		return nil

	case KindParam, KindTag:
		table, alias := "params", "p"
		if c.Kind == KindTag {
			table, alias = "tags", "t"
		}
		if c.Op == OpIsNull {
			b.WriteString("NOT ")
		}
		fmt.Fprintf(b, "EXISTS (SELECT 1 FROM %s %s WHERE %s.run_uuid = r.run_uuid AND %s.key = ", table, alias, alias, alias)
		b.arg(c.Key)
		if c.Op != OpIsNull && c.Op != OpIsNotNull {
			if !paramTagOps[c.Op] {
				return invalidComparator(c.Op, paramTagOps)
			}
			b.WriteString(" AND ")
			if err := b.textCmp(alias+".value", c); err != nil {
				return err
			}
		}
		b.WriteString(")")
		return nil

	case KindAttribute:
		key, ok := runGrammar.filterKeys[c.Key]
		if !ok {
			return errs.Invalid("Invalid attribute key '%s' specified. Valid keys are '%s'", c.Key, pySet(runGrammar.filterKeys))
		}
		col := runColumns[key]
		if runGrammar.numeric[key] {
			return b.numCmp(col, c, true)
		}
		if !stringAttrOps[c.Op] {
			return invalidComparator(c.Op, stringAttrOps)
		}
		return b.textCmp(col, c)

	case KindDataset:
		if !datasetOps[c.Op] {
			return invalidComparator(c.Op, datasetOps)
		}
		switch c.Key {
		case "name", "digest":
			b.WriteString("EXISTS (SELECT 1 FROM run_inputs ri JOIN datasets ds ON ds.dataset_uuid = ri.dataset_uuid WHERE ri.run_uuid = r.run_uuid AND ")
			if err := b.textCmp("ds."+c.Key, c); err != nil {
				return err
			}
		case "context":
			b.WriteString("EXISTS (SELECT 1 FROM run_input_tags it WHERE it.run_uuid = r.run_uuid AND it.key = ")
			b.arg(datasetContextTag)
			b.WriteString(" AND ")
			if err := b.textCmp("it.value", c); err != nil {
				return err
			}
		default:
			return errs.Invalid("Invalid dataset key '%s' specified. Valid keys are '%s'", c.Key, pySet(datasetKeys))
		}
		b.WriteString(")")
		return nil
	}
	return errs.Invalid("Invalid search expression type '%s'", c.Kind)
}

// CompileExperiments compiles an experiment filter and order_by list for
// the query shown in the package comment (outer alias e). With no order_by
// the order is MLflow's default, creation_time DESC then experiment_id ASC;
// otherwise experiment_id DESC breaks ties unless it is ordered by already,
// as in MLflow's _get_search_experiments_order_by_clauses.
func CompileExperiments(f Filter, orderBy []OrderBy, d Dialect) (SQL, error) {
	var out SQL
	w := &builder{d: d}
	for i, c := range f.Clauses {
		if i > 0 {
			w.WriteString(" AND ")
		}
		if err := w.experimentPredicate(c); err != nil {
			return SQL{}, err
		}
	}
	out.Where, out.WhereArgs = w.String(), w.args

	if len(orderBy) == 0 {
		out.OrderBy = "e.creation_time DESC, e.experiment_id"
		return out, nil
	}
	terms := make([]string, 0, len(orderBy)+1)
	byID := false
	for _, o := range orderBy {
		if o.Kind != KindAttribute {
			return SQL{}, errs.Invalid("Invalid order_by entity: %s", o.Kind)
		}
		col, ok := experimentColumns[o.Key]
		if !ok {
			return SQL{}, errs.Invalid("Invalid attribute key '%s' specified. Valid keys are '%s'", o.Key, pySet(experimentGrammar.orderKeys))
		}
		if o.Key == "name" {
			col += collate(d)
		}
		if o.Key == "experiment_id" {
			byID = true
		}
		if !o.Asc {
			col += " DESC"
		}
		terms = append(terms, col)
	}
	if !byID {
		terms = append(terms, "e.experiment_id DESC")
	}
	out.OrderBy = strings.Join(terms, ", ")
	return out, nil
}

func (b *builder) experimentPredicate(c Clause) error {
	switch c.Kind {
	case KindAttribute:
		col, ok := experimentColumns[c.Key]
		if !ok || c.Key == "experiment_id" {
			return errs.Invalid("Invalid attribute key '%s' specified. Valid keys are '%s'", c.Key, pySet(experimentGrammar.filterKeys))
		}
		if experimentGrammar.numeric[c.Key] {
			return b.numCmp(col, c, true)
		}
		if !experimentStrOps[c.Op] {
			return invalidComparator(c.Op, experimentStrOps)
		}
		return b.textCmp(col, c)
	case KindTag:
		if !paramTagOps[c.Op] {
			return invalidComparator(c.Op, paramTagOps)
		}
		b.WriteString("EXISTS (SELECT 1 FROM experiment_tags et WHERE et.experiment_id = e.experiment_id AND et.key = ")
		b.arg(c.Key)
		b.WriteString(" AND ")
		if err := b.textCmp("et.value", c); err != nil {
			return err
		}
		b.WriteString(")")
		return nil
	}
	return errs.Invalid("Invalid search expression type '%s'", c.Kind)
}

// pyOrderList renders an order_by list like the Python list MLflow prints.
func pyOrderList(obs []OrderBy) string {
	parts := make([]string, len(obs))
	for i, o := range obs {
		parts[i] = "'" + o.field() + "'"
	}
	return "[" + strings.Join(parts, ", ") + "]"
}
