// Package search implements MLflow's search grammar for runs and experiments:
// the filter string of search_runs / search_experiments and the elements of
// their order_by lists. A hand-written scanner and parser turn the text into
// a Filter or OrderBy; CompileRuns and CompileExperiments turn those into SQL
// fragments for Slipway's schema, one text for SQLite and PostgreSQL with ?
// placeholders (the store rewrites them for PostgreSQL).
//
// The grammar, the accepted aliases and the error messages follow MLflow's
// mlflow/utils/search_utils.py; the SQL follows the semantics of MLflow's
// SQLAlchemy store (_get_sqlalchemy_filter_clauses, _get_orderby_clauses).
// Where the two MLflow stores disagree or MLflow has an evident bug, this
// package picks one behaviour and says so next to the code.
//
// API:
//
//	ParseRunFilter(s) / ParseExperimentFilter(s)     -> Filter
//	ParseRunOrderBy(s) / ParseExperimentOrderBy(s)   -> OrderBy (one list element)
//	CompileRuns(f, orderBy, d) / CompileExperiments(f, orderBy, d) -> SQL
//
// The fragments are meant for these queries (the caller adds the experiment
// and lifecycle conditions, paging, and the args in this order: JoinArgs,
// its own, WhereArgs, its own):
//
//	SELECT r.run_uuid FROM runs r <Joins>
//	WHERE r.experiment_id IN (...) AND <lifecycle> AND (<Where>)
//	ORDER BY <OrderBy>
//
//	SELECT ... FROM experiments e <Joins>
//	WHERE <lifecycle> AND (<Where>) ORDER BY <OrderBy>
//
// Every error is an errs.InvalidArgument whose message names the problem;
// no input makes these functions panic.
package search

// Dialect selects the SQL engine the fragments are written for. The values
// match store.Dialect, which this package cannot import without a cycle.
type Dialect int

const (
	SQLite Dialect = iota
	Postgres
)

// Identifier kinds, spelled as MLflow spells them in its parsed filters.
const (
	KindMetric    = "metric"
	KindParam     = "parameter"
	KindTag       = "tag"
	KindAttribute = "attribute"
	KindDataset   = "dataset"
)

// Comparators, in the canonical (upper-case) form Clause.Op holds.
const (
	OpEq        = "="
	OpNe        = "!="
	OpLt        = "<"
	OpLe        = "<="
	OpGt        = ">"
	OpGe        = ">="
	OpLike      = "LIKE"
	OpILike     = "ILIKE"
	OpIn        = "IN"
	OpNotIn     = "NOT IN"
	OpIsNull    = "IS NULL"
	OpIsNotNull = "IS NOT NULL"
)

// Filter is a parsed filter string: its clauses, all of which must hold.
type Filter struct {
	Clauses []Clause
}

// Clause is one comparison of a filter.
//
// Key is the metric, param, tag or dataset field name, or the canonical
// attribute name: MLflow's aliases are resolved at parse time, so "created"
// arrives as "start_time" and "Run Name" as "run_name".
//
// Exactly one operand is meaningful: Num for metrics and numeric attributes,
// List for IN / NOT IN, none for IS NULL / IS NOT NULL, Str otherwise.
type Clause struct {
	Kind string
	Key  string
	Op   string
	Str  string
	Num  float64
	List []string
}

// OrderBy is one parsed element of an order_by list. Kind is one of the Kind
// constants; Key follows the same rules as Clause.Key.
type OrderBy struct {
	Kind, Key string
	Asc       bool
}

// SQL holds the fragments of a compiled search; see the package comment for
// the query they fit into.
type SQL struct {
	// Joins is empty or a sequence of LEFT JOIN clauses (no leading or
	// trailing space) that order-by keys need; JoinArgs are their arguments.
	Joins    string
	JoinArgs []any
	// Where is empty when the filter is, else a conjunction of predicates on
	// the outer alias; WhereArgs are its arguments.
	Where     string
	WhereArgs []any
	// OrderBy is the full ORDER BY list without the keyword, tiebreakers
	// included, so paging through results is stable.
	OrderBy string
	// Tiers is set when the first order_by is a metric. It splits the query
	// above into three whose results, concatenated in order, are exactly its
	// result: runs with a real value, runs whose value is NaN, runs without
	// the metric. The first two can walk the latest_metrics_by_key (key,
	// value, is_nan) index in order and stop at the page's limit, where the
	// single query has to rank every matching run before it can return any.
	Tiers []Tier
}

// Tier is one part of a search split by Tiers, for this query (args in
// this order: FromArgs, CondArgs, the caller's, WhereArgs, the caller's):
//
//	SELECT r.run_uuid, r.version FROM <From>
//	WHERE <Cond> AND r.experiment_id IN (...) AND <lifecycle> AND (<Where>)
//	ORDER BY <OrderBy>
type Tier struct {
	From     string
	FromArgs []any
	Cond     string
	CondArgs []any
	OrderBy  string
}
