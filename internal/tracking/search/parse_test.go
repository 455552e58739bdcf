package search

import (
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/slipwayml/slipway/internal/errs"
)

func num(kind, key, op string, v float64) Clause {
	return Clause{Kind: kind, Key: key, Op: op, Num: v}
}

func str(kind, key, op, v string) Clause {
	return Clause{Kind: kind, Key: key, Op: op, Str: v}
}

func list(kind, key, op string, vs ...string) Clause {
	return Clause{Kind: kind, Key: key, Op: op, List: vs}
}

func null(kind, key, op string) Clause {
	return Clause{Kind: kind, Key: key, Op: op}
}

// validRunFilters holds filters from MLflow's tests/utils/test_search_utils.py
// (test_filter, test_correct_quote_trimming) and Slipway's own additions.
var validRunFilters = []struct {
	in   string
	want []Clause
}{
	{"", nil},
	{"   \t\n", nil},
	{"metric.acc >= 0.94", []Clause{num(KindMetric, "acc", OpGe, 0.94)}},
	{"metric.acc>=100", []Clause{num(KindMetric, "acc", OpGe, 100)}},
	{"params.m!='tf'", []Clause{str(KindParam, "m", OpNe, "tf")}},
	{`params."m"!="tf"`, []Clause{str(KindParam, "m", OpNe, "tf")}},
	{`metric."legit name" >= 0.243`, []Clause{num(KindMetric, "legit name", OpGe, 0.243)}},
	{"metrics.XYZ = 3", []Clause{num(KindMetric, "XYZ", OpEq, 3)}},
	{`params."cat dog" = "pets"`, []Clause{str(KindParam, "cat dog", OpEq, "pets")}},
	{`metrics."X-Y-Z" = 3`, []Clause{num(KindMetric, "X-Y-Z", OpEq, 3)}},
	{`metrics."X//Y#$$@&Z" = 3`, []Clause{num(KindMetric, "X//Y#$$@&Z", OpEq, 3)}},
	{"params.model = 'LinearRegression'", []Clause{str(KindParam, "model", OpEq, "LinearRegression")}},
	{"metrics.rmse < 1 and params.model_class = 'LR'", []Clause{
		num(KindMetric, "rmse", OpLt, 1), str(KindParam, "model_class", OpEq, "LR")}},
	{"`metric`.a >= 0.1", []Clause{num(KindMetric, "a", OpGe, 0.1)}},
	{"tags.version = 'commit-hash'", []Clause{str(KindTag, "version", OpEq, "commit-hash")}},
	{"`tags`.source_name = 'a notebook'", []Clause{str(KindTag, "source_name", OpEq, "a notebook")}},
	{`metrics."accuracy.2.0" > 5`, []Clause{num(KindMetric, "accuracy.2.0", OpGt, 5)}},
	{"metrics.`spacey name` > 5", []Clause{num(KindMetric, "spacey name", OpGt, 5)}},
	{`params."p.a.r.a.m" != "a"`, []Clause{str(KindParam, "p.a.r.a.m", OpNe, "a")}},
	{`tags."t.a.g" = "a"`, []Clause{str(KindTag, "t.a.g", OpEq, "a")}},
	{"attribute.artifact_uri = '1/23/4'", []Clause{str(KindAttribute, "artifact_uri", OpEq, "1/23/4")}},
	{"attribute.start_time >= 1234", []Clause{num(KindAttribute, "start_time", OpGe, 1234)}},
	{"run.status = 'RUNNING'", []Clause{str(KindAttribute, "status", OpEq, "RUNNING")}},
	{"dataset.name = 'my_dataset'", []Clause{str(KindDataset, "name", OpEq, "my_dataset")}},
	{"tags.version IS NULL", []Clause{null(KindTag, "version", OpIsNull)}},
	{"tags.version IS NOT NULL", []Clause{null(KindTag, "version", OpIsNotNull)}},
	{"params.lr IS NULL", []Clause{null(KindParam, "lr", OpIsNull)}},
	{"params.lr is not null", []Clause{null(KindParam, "lr", OpIsNotNull)}},
	{"tags.a IS NULL AND params.b = 'val'", []Clause{null(KindTag, "a", OpIsNull), str(KindParam, "b", OpEq, "val")}},
	{"params.m = 'LR'", []Clause{str(KindParam, "m", OpEq, "LR")}},
	{`params.m = "LR"`, []Clause{str(KindParam, "m", OpEq, "LR")}},
	{`params.m = "L'Hosp"`, []Clause{str(KindParam, "m", OpEq, "L'Hosp")}},

	// Every entity alias MLflow accepts.
	{"metrics.a = 1 AND metric.b = 2", []Clause{num(KindMetric, "a", OpEq, 1), num(KindMetric, "b", OpEq, 2)}},
	{"parameters.a = 'x' AND parameter.b = 'y' AND param.c = 'z'", []Clause{
		str(KindParam, "a", OpEq, "x"), str(KindParam, "b", OpEq, "y"), str(KindParam, "c", OpEq, "z")}},
	{"tag.a = 'x'", []Clause{str(KindTag, "a", OpEq, "x")}},
	{"attributes.status = 'A' AND attr.user_id = 'u' AND attribute.run_name = 'n'", []Clause{
		str(KindAttribute, "status", OpEq, "A"), str(KindAttribute, "user_id", OpEq, "u"), str(KindAttribute, "run_name", OpEq, "n")}},
	{"datasets.digest = 'd' AND datasets.context = 'train'", []Clause{
		str(KindDataset, "digest", OpEq, "d"), str(KindDataset, "context", OpEq, "train")}},

	// Unprefixed names are attributes, and MLflow's aliases resolve.
	{"status = 'FINISHED'", []Clause{str(KindAttribute, "status", OpEq, "FINISHED")}},
	{"created >= 5 AND Created < 9", []Clause{num(KindAttribute, "start_time", OpGe, 5), num(KindAttribute, "start_time", OpLt, 9)}},
	{"`Run Name` = 'a' AND attributes.`run name` = 'b' AND \"Run name\" = 'c'", []Clause{
		str(KindAttribute, "run_name", OpEq, "a"), str(KindAttribute, "run_name", OpEq, "b"), str(KindAttribute, "run_name", OpEq, "c")}},
	{"end_time != 0", []Clause{num(KindAttribute, "end_time", OpNe, 0)}},

	// Numbers.
	{"metrics.a > -1", []Clause{num(KindMetric, "a", OpGt, -1)}},
	{"metrics.a>-1.5e-3", []Clause{num(KindMetric, "a", OpGt, -1.5e-3)}},
	{"metrics.a < .5", []Clause{num(KindMetric, "a", OpLt, .5)}},
	{"metrics.a < 5.", []Clause{num(KindMetric, "a", OpLt, 5)}},
	{"metrics.a < 2E+10", []Clause{num(KindMetric, "a", OpLt, 2e10)}},
	{"metrics.a < 1e999", []Clause{num(KindMetric, "a", OpLt, math.Inf(1))}},
	{"metrics.a <= -0", []Clause{num(KindMetric, "a", OpLe, 0)}},

	// Comparators in any case, lists, quoting and escapes.
	{"params.a like 'x%' AND tags.b IlIkE '%Y'", []Clause{str(KindParam, "a", OpLike, "x%"), str(KindTag, "b", OpILike, "%Y")}},
	{"attributes.run_id IN ('a', 'b')", []Clause{list(KindAttribute, "run_id", OpIn, "a", "b")}},
	{"run_id not in ('a')", []Clause{list(KindAttribute, "run_id", OpNotIn, "a")}},
	{`run_id IN("a","b" , 'c')`, []Clause{list(KindAttribute, "run_id", OpIn, "a", "b", "c")}},
	{"datasets.name IN ('n1', 'n2')", []Clause{list(KindDataset, "name", OpIn, "n1", "n2")}},
	{"datasets.digest NOT IN ('d1')", []Clause{list(KindDataset, "digest", OpNotIn, "d1")}},
	{"datasets.context IN ('train', 'eval')", []Clause{list(KindDataset, "context", OpIn, "train", "eval")}},
	{"datasets.name LIKE 'n%' AND datasets.name ILIKE 'N%'", []Clause{str(KindDataset, "name", OpLike, "n%"), str(KindDataset, "name", OpILike, "N%")}},
	{"params.a = 'it''s'", []Clause{str(KindParam, "a", OpEq, "it's")}},
	{`params.a = 'it\'s'`, []Clause{str(KindParam, "a", OpEq, "it's")}},
	{`params.a = "say ""hi"""`, []Clause{str(KindParam, "a", OpEq, `say "hi"`)}},
	{`params.a = 'C:\dir\x'`, []Clause{str(KindParam, "a", OpEq, `C:\dir\x`)}},
	{"params.a = ''", []Clause{str(KindParam, "a", OpEq, "")}},
	{"params.a = 'x AND y = 1'", []Clause{str(KindParam, "a", OpEq, "x AND y = 1")}},
	{"params.a = 'semi;colon'", []Clause{str(KindParam, "a", OpEq, "semi;colon")}},
	{"params.a = 'ünï'", []Clause{str(KindParam, "a", OpEq, "ünï")}},
	{"params.ключ = 'значение'", []Clause{str(KindParam, "ключ", OpEq, "значение")}},

	// Dotted keys need no quotes, as MLflow splits at the first dot only.
	{"tags.mlflow.runName = 'x'", []Clause{str(KindTag, "mlflow.runName", OpEq, "x")}},
	{"metrics.accuracy.2 > 0", []Clause{num(KindMetric, "accuracy.2", OpGt, 0)}},

	// Stray ANDs are separators, as sqlparse lets them through.
	{"AND metrics.a > 1 AND", []Clause{num(KindMetric, "a", OpGt, 1)}},
	{"metrics.a > 1 AND AND metrics.b > 2", []Clause{num(KindMetric, "a", OpGt, 1), num(KindMetric, "b", OpGt, 2)}},
	{"metrics.a > 1\nAND\tmetrics.b > 2", []Clause{num(KindMetric, "a", OpGt, 1), num(KindMetric, "b", OpGt, 2)}},
}

type invalidCase struct{ in, want string }

var invalidRunFilters = []invalidCase{
	// From MLflow's test_error_filter.
	{"metric.acc >= 0.94; metrics.rmse < 1", "Search filter contained multiple expression"},
	{"m.acc >= 0.94", "Invalid entity type"},
	{"acc >= 0.94", "Invalid attribute key"},
	{"p.model >= 'LR'", "Invalid entity type"},
	{"attri.x != 1", "Invalid entity type"},
	{"a.x != 1", "Invalid entity type"},
	{"model >= 'LR'", "Invalid attribute key"},
	{"metrics.A > 0.1 OR params.B = 'LR'", "Invalid clause(s) in filter string: 'OR'"},
	{"metrics.A > 0.1 NAND params.B = 'LR'", "Invalid clause(s) in filter string"},
	{"metrics.A > 0.1 AND (params.B = 'LR')", "Invalid clause(s) in filter string"},
	{"`metrics.A > 0.1", "Invalid clause(s) in filter string"},
	{"param`.A > 0.1", "Invalid clause(s) in filter string"},
	{"`dummy.A > 0.1", "Invalid clause(s) in filter string"},
	{"dummy`.A > 0.1", "Invalid clause(s) in filter string"},
	{"attribute.start != 1", "Invalid attribute key"},
	{"attribute.experiment_id != 1", "Invalid attribute key"},
	{"attribute.lifecycle_stage = 'ACTIVE'", "Invalid attribute key"},
	{"attribute.name != 1", "Invalid attribute key"},
	{"attribute.time != 1", "Invalid attribute key"},
	{"attribute._status != 'RUNNING'", "Invalid attribute key '_status' specified. Valid keys are '{'Created', 'Run Name', 'Run name', 'artifact_uri', 'created', 'end_time', 'run name', 'run_id', 'run_name', 'start_time', 'status', 'user_id'}'"},
	{"attribute.status = true", "Invalid clause(s) in filter string"},
	{"dataset.status = 'true'", "Invalid dataset key 'status' specified. Valid keys are '{'context', 'digest', 'name'}'"},
	{"dataset.profile = 'num_rows: 10'", "Invalid dataset key"},
	{"metrics.acc IS NULL", "IS NULL / IS NOT NULL is only supported for tags and params"},
	{"attribute.status IS NULL", "IS NULL / IS NOT NULL is only supported for tags and params"},
	{"datasets.name IS NOT NULL", "IS NULL / IS NOT NULL is only supported for tags and params"},

	// From test_error_comparison_clauses.
	{"metric.model = 'LR'", "Expected numeric value type for metric. Found 'LR'"},
	{"metric.model = '5'", "Expected numeric value type for metric"},
	{"params.acc = 5", "Expected a quoted string value for parameter (e.g. 'my-value'). Got value 5"},
	{"tags.acc = 5", "Expected a quoted string value for tag"},
	{"metrics.acc != metrics.acc", "Expected numeric value type for metric. Found metrics.acc"},
	{"1.0 > metrics.acc", "Expected 'Identifier' found '1.0'"},
	{"attribute.status = 1", "Expected a quoted string value for attributes. Got value 1"},

	// From test_bad_quotes.
	{"params.acc = LR", "Parameter value is either not quoted or unidentified quote types used for string value LR"},
	{"tags.acc = LR", "value is either not quoted or unidentified quote types"},
	{"params.acc = `LR`", "value is either not quoted or unidentified quote types used for string value `LR`"},
	{"params.'acc = LR", "Invalid clause(s) in filter string"},
	{"params.acc = 'LR", "Invalid clause(s) in filter string"},
	{"params.acc = LR'", "Invalid clause(s) in filter string"},
	{"params.acc = \"LR'", "Invalid clause(s) in filter string"},
	{"tags.acc = \"LR'", "Invalid clause(s) in filter string"},
	{"tags.acc = = 'LR'", "Invalid clause(s) in filter string"},
	{"attribute.status IS 'RUNNING'", "Invalid clause(s) in filter string"},

	// From test_invalid_clauses.
	{"params.acc LR !=", "Invalid clause(s) in filter string"},
	{"params.acc LR", "Invalid clause(s) in filter string"},
	{"metric.acc !=", "Invalid clause(s) in filter string: 'metric.acc !='"},
	{"acc != 1.0", "Invalid attribute key"},
	{"foo is null", "Invalid attribute key"},
	{"1=1", "Expected 'Identifier' found"},
	{"1==2", "Expected 'Identifier' found"},

	// From test_bad_comparators.
	{"metrics.abc ~ 1.0", "Invalid comparator '~' not one of '{'!=', '<', '<=', '=', '>', '>='}'"},
	{"metrics.abc ~= 1.0", "Invalid comparator"},
	{"metrics.abc == 1.0", "Invalid comparator '=='"},
	{"metrics.abc <> 1.0", "Invalid comparator '<>'"},
	{"metrics.abc LIKE 1.0", "Invalid comparator 'LIKE'"},
	{"params.abc > 'my-param-value'", "Invalid comparator '>' not one of '{'!=', '=', 'ILIKE', 'LIKE'}'"},
	{"params.abc <= 'my-param-value'", "Invalid comparator"},
	{"params.abc ~ 'my-param-value'", "Invalid comparator"},
	{"tags.abc >= 'my-tag-value'", "Invalid comparator"},
	{"tags.abc < 'my-tag-value'", "Invalid comparator"},
	{"attributes.status > 'my-tag-value'", "Invalid comparator '>' not one of '{'!=', '=', 'ILIKE', 'IN', 'LIKE', 'NOT IN'}'"},
	{"attributes.status ~ 'my-tag-value'", "Invalid comparator"},
	{"attributes.start_time LIKE 1234", "Invalid comparator 'LIKE'"},
	{"attributes.start_time ILIKE 1234", "Invalid comparator 'ILIKE'"},
	{"datasets.name > 'my-dataset-name'", "Invalid comparator"},
	{"datasets.name <= 'my-dataset-name'", "Invalid comparator"},
	{"params.abc IN ('a')", "Expected a quoted string value for parameter"},
	{"tags.abc NOT IN ('a')", "Expected a quoted string value for tag"},

	// Lists.
	{"attributes.run_name IN ('foo','bar')", "Only the 'run_id' attribute supports comparison with a list of quoted string values."},
	{"status NOT IN ('A')", "Only the 'run_id' attribute supports comparison"},
	{"run_id IN ()", "expected a non-empty list of string values, but got empty list"},
	{"run_id IN (  )", "but got empty list"},
	{"run_id IN ('a',)", "but got ill-formed list"},
	{"run_id IN (,'a')", "but got ill-formed list"},
	{"run_id IN ('a',,'b')", "but got ill-formed list"},
	{"run_id IN ('a' 'b')", "but got ill-formed list"},
	{"run_id IN ('a', 1)", "but got different type in list: ('a', 1)"},
	{"run_id IN (a)", "but got different type in list"},
	{"run_id IN (('a'))", "but got different type in list"},
	{"run_id IN 'a'", "Invalid clause(s) in filter string"},
	{"run_id IN ('a'", "Invalid clause(s) in filter string"},
	{"run_id = ('a')", "Invalid comparator '=' for a list of values; use IN or NOT IN"},
	{"datasets.name = ('a')", "use IN or NOT IN"},
	{"metrics.a IN (1)", "Expected numeric value type for metric. Found (1)"},

	// Value types.
	{"start_time = 'now'", "Expected numeric value type for numeric attribute: start_time. Found 'now'"},
	{"created = now", "Expected numeric value type for numeric attribute: created. Found now"},
	{"datasets.name = 40", "Expected a quoted string value for dataset attributes. Got value 40"},
	{"datasets.context = ctx", "value is either not quoted"},
	{"status = NULL", "Invalid clause(s) in filter string"},
	{"metrics.a > 5abc", "Invalid clause(s) in filter string"},
	{"metrics.a > 1.2.3", "Invalid clause(s) in filter string"},
	{"metrics.a > - 1", "Invalid clause(s) in filter string"},
	{"metrics.a > +1", "Invalid clause(s) in filter string"},
	{"metrics.a >", "Invalid clause(s) in filter string"},

	// Structure.
	{"metrics.a > 1 metrics.b > 2", "Invalid clause(s) in filter string: 'metrics.b'"},
	{"metrics.a > 1 OR", "Invalid clause(s) in filter string: 'OR'"},
	{"metrics.a > 1;", "Invalid clause(s) in filter string: ';'"},
	{";", "Invalid clause(s) in filter string: ';'"},
	{"; metrics.a > 1", "Search filter contained multiple expression"},
	{"metrics.", "Invalid clause(s) in filter string"},
	{"metrics. > 1", "Invalid clause(s) in filter string"},
	{"metrics.a.'b' > 1", "Invalid clause(s) in filter string"},
	{`metrics.a."b" > 1`, "Invalid identifier 'metrics.a.\"b\"'"},
	{"`metrics.acc` > 1", "Invalid entity type '`metrics'"},
	{`"metrics".acc > 1`, `Invalid entity type '"metrics"'`},
	{"Metrics.acc > 1", "Invalid entity type 'Metrics'"},
	{"(metrics.a > 1)", "Invalid clause(s) in filter string: '('"},
	{"NOT metrics.a > 1", "Invalid clause(s) in filter string: 'NOT metrics.a'"},
	{"metrics.a NOT LIKE 1", "Invalid clause(s) in filter string: 'metrics.a NOT LIKE'"},
	{"params.a IS NOT 'x'", "Invalid clause(s) in filter string"},
	{"'a' = 'b'", "Expected 'Identifier' found ''a''"},
	// A backslash before the closing quote escapes it, as in sqlparse.
	{`params.a = 'C:\dir\'`, "Invalid clause(s) in filter string"},
	{"metrics.a\x00 > 1", "contains a NUL character"},
	{"params.a = '\xff'", "not valid UTF-8"},
}

func TestParseRunFilter(t *testing.T) {
	for _, c := range validRunFilters {
		got, err := ParseRunFilter(c.in)
		if err != nil {
			t.Errorf("ParseRunFilter(%q): %v", c.in, err)
			continue
		}
		if len(got.Clauses) == 0 && len(c.want) == 0 {
			continue
		}
		if !reflect.DeepEqual(got.Clauses, c.want) {
			t.Errorf("ParseRunFilter(%q)\n got %#v\nwant %#v", c.in, got.Clauses, c.want)
		}
	}
}

func TestParseRunFilterErrors(t *testing.T) {
	for _, c := range invalidRunFilters {
		checkInvalid(t, "ParseRunFilter", c, func(s string) error {
			_, err := ParseRunFilter(s)
			return err
		})
	}
}

func checkInvalid(t *testing.T, fn string, c invalidCase, parse func(string) error) {
	t.Helper()
	err := parse(c.in)
	if err == nil {
		t.Errorf("%s(%q) succeeded, want error containing %q", fn, c.in, c.want)
		return
	}
	if !errs.Is(err, errs.InvalidArgument) {
		t.Errorf("%s(%q): error %v has code %v, want invalid_argument", fn, c.in, err, errs.CodeOf(err))
	}
	if !strings.Contains(errs.Message(err), c.want) {
		t.Errorf("%s(%q):\n got %q\nwant it to contain %q", fn, c.in, errs.Message(err), c.want)
	}
}

var validExperimentFilters = []struct {
	in   string
	want []Clause
}{
	{"", nil},
	{"name = 'exp'", []Clause{str(KindAttribute, "name", OpEq, "exp")}},
	{"attribute.name != 'exp'", []Clause{str(KindAttribute, "name", OpNe, "exp")}},
	{`name LIKE "a%" AND name ilike '%B'`, []Clause{str(KindAttribute, "name", OpLike, "a%"), str(KindAttribute, "name", OpILike, "%B")}},
	{"creation_time > 5 AND last_update_time <= 1.5", []Clause{num(KindAttribute, "creation_time", OpGt, 5), num(KindAttribute, "last_update_time", OpLe, 1.5)}},
	{"tags.key = 'value' AND tag.`a b` LIKE 'x%'", []Clause{str(KindTag, "key", OpEq, "value"), str(KindTag, "a b", OpLike, "x%")}},
	{`tags."a.b" != 'v'`, []Clause{str(KindTag, "a.b", OpNe, "v")}},
	{"tags.mlflow.note = 'v'", []Clause{str(KindTag, "mlflow.note", OpEq, "v")}},
}

var invalidExperimentFilters = []invalidCase{
	{"attributes.name = 'x'", "Invalid entity type 'attributes'. Valid entity types are ('attribute', 'tag', 'tags')"},
	{"`tag`.a = 'x'", "Invalid entity type '`tag`'"},
	{"metrics.a > 1", "Invalid entity type 'metrics'"},
	{"params.a = 'x'", "Invalid entity type"},
	{"experiment_id = '1'", "Invalid attribute key 'experiment_id' specified. Valid keys are '{'creation_time', 'last_update_time', 'name'}'"},
	{"lifecycle_stage = 'active'", "Invalid attribute key"},
	{"name > 'x'", "Invalid comparator '>' not one of '{'!=', '=', 'ILIKE', 'LIKE'}'"},
	{"name IN ('x')", "Only the 'run_id' attribute supports comparison"},
	{"name = x", "value is either not quoted"},
	{"name = 1", "Expected a quoted string value for attributes"},
	{"creation_time = 'x'", "Expected numeric value type for numeric attribute: creation_time"},
	{"creation_time LIKE 1", "Invalid comparator 'LIKE'"},
	{"tags.a > 'x'", "Invalid comparator '>'"},
	{"tags.a = 1", "Expected a quoted string value for tag"},
	{"tags.a IS NULL", "IS NULL / IS NOT NULL is not supported"},
	{"name = 'a' OR name = 'b'", "Invalid clause(s) in filter string: OR"},
	{"name = 'a'; name = 'b'", "Search filter contained multiple expression"},
}

func TestParseExperimentFilter(t *testing.T) {
	for _, c := range validExperimentFilters {
		got, err := ParseExperimentFilter(c.in)
		if err != nil {
			t.Errorf("ParseExperimentFilter(%q): %v", c.in, err)
			continue
		}
		if len(got.Clauses) == 0 && len(c.want) == 0 {
			continue
		}
		if !reflect.DeepEqual(got.Clauses, c.want) {
			t.Errorf("ParseExperimentFilter(%q)\n got %#v\nwant %#v", c.in, got.Clauses, c.want)
		}
	}
	for _, c := range invalidExperimentFilters {
		checkInvalid(t, "ParseExperimentFilter", c, func(s string) error {
			_, err := ParseExperimentFilter(s)
			return err
		})
	}
}

var validRunOrderBys = []struct {
	in   string
	want OrderBy
}{
	// From MLflow's test_correct_sorting and test_space_order_by_search_runs.
	{"tags.noSuchTag", OrderBy{KindTag, "noSuchTag", true}},
	{"attributes.status", OrderBy{KindAttribute, "status", true}},
	{"attributes.start_time", OrderBy{KindAttribute, "start_time", true}},
	{"metrics.key1 asc", OrderBy{KindMetric, "key1", true}},
	{`metrics."key1"  desc`, OrderBy{KindMetric, "key1", false}},
	{"params.my_param", OrderBy{KindParam, "my_param", true}},
	{"params.my_param aSc", OrderBy{KindParam, "my_param", true}},
	{"attributes.status  ASC", OrderBy{KindAttribute, "status", true}},
	{"attributes.status   DESC", OrderBy{KindAttribute, "status", false}},
	{"params.`my_param` DESC", OrderBy{KindParam, "my_param", false}},
	{"tags.tag1    DESC", OrderBy{KindTag, "tag1", false}},
	{"metrics.`Mean Square Error`", OrderBy{KindMetric, "Mean Square Error", true}},
	{"metrics.`Mean Square Error` ASC", OrderBy{KindMetric, "Mean Square Error", true}},
	{"metrics.`Mean Square Error` DESC", OrderBy{KindMetric, "Mean Square Error", false}},
	// Aliases and bare attributes.
	{"start_time DESC", OrderBy{KindAttribute, "start_time", false}},
	{"created", OrderBy{KindAttribute, "start_time", true}},
	{"Created DESC", OrderBy{KindAttribute, "start_time", false}},
	{"run.run_id", OrderBy{KindAttribute, "run_id", true}},
	{"attr.run_name\tDESC", OrderBy{KindAttribute, "run_name", false}},
	{"end_time", OrderBy{KindAttribute, "end_time", true}},
	{"tags.mlflow.runName", OrderBy{KindTag, "mlflow.runName", true}},
	{`param."a b" desc`, OrderBy{KindParam, "a b", false}},
}

var invalidRunOrderBys = []invalidCase{
	// From MLflow's test_invalid_order_by_search_runs.
	{"m.acc", "Invalid entity type"},
	{"acc", "Invalid attribute key"},
	{"attri.x", "Invalid entity type"},
	{"`metrics.A", "Invalid order_by clause"},
	{"`metrics.A`", "Invalid entity type"},
	{"attribute.start", "Invalid attribute key"},
	{"attribute.experiment_id", "Invalid attribute key"},
	{"metrics.A != 1", "Invalid order_by clause"},
	{"params.my_param ", "Invalid order_by clause 'params.my_param '. Could not be parsed."},
	{"attribute.run_id ACS", "Invalid ordering key in order_by clause 'attribute.run_id ACS'."},
	{"attribute.run_id decs", "Invalid ordering key"},
	// More.
	{"", "Invalid order_by clause"},
	{" metrics.a", "Invalid order_by clause"},
	{"metrics.a DESC blah", "Invalid order_by clause"},
	{"metrics.a DESC;", "Invalid order_by clause"},
	{"metrics.a, metrics.b", "Invalid order_by clause"},
	{"metrics.", "Invalid order_by clause"},
	{"1", "Invalid order_by clause"},
	{"'metrics.a'", "Invalid order_by clause"},
	{"`Run Name`", "Invalid attribute key 'Run Name'"},
	{"datasets.name", "Invalid identifier type 'dataset'"},
	{"metrics.a\x00", "NUL"},
}

var validExperimentOrderBys = []struct {
	in   string
	want OrderBy
}{
	{"name", OrderBy{KindAttribute, "name", true}},
	{"name DESC", OrderBy{KindAttribute, "name", false}},
	{"attribute.experiment_id ASC", OrderBy{KindAttribute, "experiment_id", true}},
	{"creation_time desc", OrderBy{KindAttribute, "creation_time", false}},
	{"last_update_time", OrderBy{KindAttribute, "last_update_time", true}},
}

var invalidExperimentOrderBys = []invalidCase{
	{"tags.a", "Invalid order_by entity: tag"},
	{"metrics.a", "Invalid entity type 'metrics'"},
	{"start_time", "Invalid attribute key 'start_time'"},
	{"name ACS", "Invalid ordering key"},
	{"name DESC x", "Invalid order_by clause"},
}

func TestParseOrderBy(t *testing.T) {
	for _, c := range validRunOrderBys {
		got, err := ParseRunOrderBy(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseRunOrderBy(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
	for _, c := range invalidRunOrderBys {
		checkInvalid(t, "ParseRunOrderBy", c, func(s string) error {
			_, err := ParseRunOrderBy(s)
			return err
		})
	}
	for _, c := range validExperimentOrderBys {
		got, err := ParseExperimentOrderBy(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseExperimentOrderBy(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
	for _, c := range invalidExperimentOrderBys {
		checkInvalid(t, "ParseExperimentOrderBy", c, func(s string) error {
			_, err := ParseExperimentOrderBy(s)
			return err
		})
	}
}

func TestCompileErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		f    Filter
		ob   []OrderBy
		want string
	}{
		{"duplicate order", Filter{}, []OrderBy{{KindMetric, "a", true}, {KindMetric, "a", false}}, "`order_by` contains duplicate fields"},
		{"alias duplicate", Filter{}, []OrderBy{{KindAttribute, "start_time", true}, {KindAttribute, "created", false}}, "duplicate fields"},
		{"dataset order", Filter{}, []OrderBy{{KindDataset, "name", true}}, "Invalid identifier type 'dataset'"},
		{"bad kind", Filter{Clauses: []Clause{{Kind: "x", Key: "a", Op: OpEq}}}, nil, "Invalid search expression type 'x'"},
		{"bad attr", Filter{Clauses: []Clause{{Kind: KindAttribute, Key: "nope", Op: OpEq}}}, nil, "Invalid attribute key 'nope'"},
		{"bad op", Filter{Clauses: []Clause{{Kind: KindMetric, Key: "a", Op: OpLike}}}, nil, "Invalid comparator 'LIKE'"},
		{"empty in", Filter{Clauses: []Clause{{Kind: KindAttribute, Key: "run_id", Op: OpIn}}}, nil, "non-empty list"},
		{"bad dataset key", Filter{Clauses: []Clause{{Kind: KindDataset, Key: "profile", Op: OpEq}}}, nil, "Invalid dataset key"},
	} {
		_, err := CompileRuns(c.f, c.ob, SQLite)
		if err == nil || !errs.Is(err, errs.InvalidArgument) || !strings.Contains(errs.Message(err), c.want) {
			t.Errorf("%s: CompileRuns error %v, want invalid_argument containing %q", c.name, err, c.want)
		}
	}
	for _, c := range []struct {
		name string
		f    Filter
		ob   []OrderBy
		want string
	}{
		{"tag order", Filter{}, []OrderBy{{KindTag, "a", true}}, "Invalid order_by entity: tag"},
		{"bad order key", Filter{}, []OrderBy{{KindAttribute, "status", true}}, "Invalid attribute key 'status'"},
		{"id filter", Filter{Clauses: []Clause{{Kind: KindAttribute, Key: "experiment_id", Op: OpEq}}}, nil, "Invalid attribute key"},
		{"metric filter", Filter{Clauses: []Clause{{Kind: KindMetric, Key: "a", Op: OpEq}}}, nil, "Invalid search expression type"},
	} {
		_, err := CompileExperiments(c.f, c.ob, SQLite)
		if err == nil || !errs.Is(err, errs.InvalidArgument) || !strings.Contains(errs.Message(err), c.want) {
			t.Errorf("%s: CompileExperiments error %v, want invalid_argument containing %q", c.name, err, c.want)
		}
	}
}
