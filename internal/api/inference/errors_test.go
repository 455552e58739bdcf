package inference

import (
	"strings"
	"testing"
)

// errorCase is one bad request and the exact answer it gets.
type errorCase struct {
	name, method, path, ctype, body string
	status                          int
	want                            string
}

func runErrorCases(t *testing.T, h *harness, cases []errorCase) {
	t.Helper()
	for _, tc := range cases {
		method := tc.method
		if method == "" {
			method = "POST"
		}
		w := h.do(method, tc.path, tc.ctype, tc.body)
		got := strings.TrimSpace(w.Body.String())
		if w.Code != tc.status || got != tc.want {
			t.Errorf("%s:\n got %d %s\nwant %d %s", tc.name, w.Code, got, tc.status, tc.want)
		}
	}
}

const inferSmall = "/v2/models/small/infer"

func TestOIPErrors(t *testing.T) {
	h := newHarness(t, Options{MaxRows: 5, MaxBodyBytes: 4096})
	col := func(name, shape, dt, data string) string {
		return `{"name":"` + name + `","shape":` + shape + `,"datatype":"` + dt + `","data":` + data + `}`
	}
	three := func(extra string) string {
		return `{"inputs":[` + col("radius", "[1]", "FP32", "[1]") + `,` + col("texture", "[1]", "FP32", "[1]") + `,` + col("perimeter", "[1]", "FP32", "[1]") + extra + `]}`
	}
	cases := []errorCase{
		{name: "not JSON", path: inferSmall, body: `{"inputs":[`, status: 400, want: `{"error":"request body: invalid JSON at byte 11: unexpected end of input, expected a value"}`},
		{name: "not an object", path: inferSmall, body: `[1,2]`, status: 400, want: `{"error":"request body: must be a JSON object with \"inputs\""}`},
		{name: "unknown field", path: inferSmall, body: `{"input":[]}`, status: 400, want: `{"error":"request body: unknown field \"input\" (an inference request has id, parameters, inputs, outputs)"}`},
		{name: "no inputs", path: inferSmall, body: `{"inputs":[]}`, status: 400, want: `{"error":"request body: \"inputs\" must hold at least one input"}`},
		{name: "id not a string", path: inferSmall, body: `{"id":7,"inputs":[]}`, status: 400, want: `{"error":"request body: \"id\" must be a string"}`},
		{name: "missing input", path: inferSmall, body: three(""), status: 400, want: `{"error":"missing input \"area\""}`},
		{name: "missing inputs", path: inferSmall, body: `{"inputs":[` + col("radius", "[1]", "FP32", "[1]") + `]}`, status: 400, want: `{"error":"missing inputs \"texture\", \"perimeter\", \"area\""}`},
		{name: "unknown input", path: inferSmall, body: three(`,` + col("height", "[1]", "FP32", "[1]")), status: 400, want: `{"error":"input \"height\": the model has no such column (its columns are \"radius\", \"texture\", \"perimeter\", \"area\")"}`},
		{name: "lone unknown input", path: inferSmall, body: `{"inputs":[` + col("x", "[1]", "FP32", "[1]") + `]}`, status: 400, want: `{"error":"input \"x\": the model has no column \"x\"; send one input per column (\"radius\", \"texture\", \"perimeter\", \"area\") or one [N, 4] tensor"}`},
		{name: "duplicate input", path: inferSmall, body: three(`,` + col("radius", "[1]", "FP32", "[1]")), status: 400, want: `{"error":"input \"radius\" appears twice"}`},
		{name: "matrix too narrow", path: inferSmall, body: `{"inputs":[` + col("x", "[2, 3]", "FP32", "[1,2,3,4,5,6]") + `]}`, status: 400, want: `{"error":"input \"x\": shape [2, 3], but the model takes 4 features"}`},
		{name: "bad datatype", path: inferSmall, body: three(`,` + col("area", "[1]", "FLOAT", "[1]")), status: 400, want: `{"error":"input \"area\": datatype \"FLOAT\" is not an Open Inference Protocol datatype (BOOL, UINT8, UINT16, UINT32, UINT64, INT8, INT16, INT32, INT64, FP16, FP32, FP64, BYTES)"}`},
		{name: "BYTES for a numeric column", path: inferSmall, body: three(`,` + col("area", "[1]", "BYTES", `["big"]`)), status: 400, want: `{"error":"input \"area\": datatype BYTES, but the model's column \"area\" is float"}`},
		{name: "string in FP32", path: inferSmall, body: three(`,` + col("area", "[1]", "FP32", `["1.5"]`)), status: 400, want: `{"error":"input \"area\": datatype FP32 holds numbers; element 0 is \"1.5\""}`},
		{name: "fraction in INT64", path: inferSmall, body: three(`,` + col("area", "[1]", "INT64", `[1.5]`)), status: 400, want: `{"error":"input \"area\": datatype INT64 holds whole numbers; element 0 is 1.5"}`},
		{name: "out of UINT8", path: inferSmall, body: three(`,` + col("area", "[1]", "UINT8", `[256]`)), status: 400, want: `{"error":"input \"area\": element 0 is 256, outside UINT8's range 0 to 255"}`},
		{name: "number in BOOL", path: inferSmall, body: three(`,` + col("area", "[1]", "BOOL", `[1]`)), status: 400, want: `{"error":"input \"area\": datatype BOOL holds true or false; element 0 is 1"}`},
		{name: "shape vs data", path: inferSmall, body: three(`,` + col("area", "[1]", "FP32", `[1, 2]`)), status: 400, want: `{"error":"input \"area\": shape [1] needs 1 value, but data has 2"}`},
		{name: "rows differ", path: inferSmall, body: three(`,` + col("area", "[2]", "FP32", `[1, 2]`)), status: 400, want: `{"error":"input \"area\": 2 rows, but input \"radius\" has 1"}`},
		{name: "column of two", path: inferSmall, body: three(`,` + col("area", "[1, 2]", "FP32", `[1, 2]`)), status: 400, want: `{"error":"input \"area\": shape [1, 2], but an input for one column has shape [N] or [N, 1]"}`},
		{name: "nesting vs shape", path: inferSmall, body: `{"inputs":[` + col("x", "[2, 4]", "FP32", "[[1,2],[3,4],[5,6],[7,8]]") + `]}`, status: 400, want: `{"error":"input \"x\": data is nested as [4, 2], but shape is [2, 4]"}`},
		{name: "ragged", path: inferSmall, body: `{"inputs":[` + col("x", "[2, 4]", "FP32", "[[1,2,3,4],[5,6,7]]") + `]}`, status: 400, want: `{"error":"input \"x\": data has arrays of different lengths at one level; send it flat, or nested as the shape [2, 4]"}`},
		{name: "mixed nesting", path: inferSmall, body: `{"inputs":[` + col("x", "[2, 4]", "FP32", "[[1,2,3,4],5,6,7,8]") + `]}`, status: 400, want: `{"error":"input \"x\": data mixes values and arrays at one level; send it flat, or nested as the shape"}`},
		{name: "negative shape", path: inferSmall, body: three(`,` + col("area", "[-1]", "FP32", `[1]`)), status: 400, want: `{"error":"input \"area\": shape must list 1 to 8 dimensions, each a whole number from 0"}`},
		{name: "no shape", path: inferSmall, body: `{"inputs":[{"name":"area","datatype":"FP32","data":[1]}]}`, status: 400, want: `{"error":"input \"area\": \"shape\" is required"}`},
		{name: "no name", path: inferSmall, body: `{"inputs":[{"shape":[1],"datatype":"FP32","data":[1]}]}`, status: 400, want: `{"error":"inputs[0]: \"name\" is required"}`},
		{name: "empty batch", path: inferSmall, body: `{"inputs":[` + col("x", "[0, 4]", "FP32", "[]") + `]}`, status: 400, want: `{"error":"input \"x\": no rows; a request needs at least one"}`},
		{name: "too many rows", path: inferSmall, body: `{"inputs":[` + col("x", "[6, 4]", "FP32", "["+strings.Repeat("1,", 23)+"1]") + `]}`, status: 400, want: `{"error":"input \"x\": 6 rows; at most 5 in one request"}`},
		{name: "unknown output", path: inferSmall, body: `{"inputs":[` + col("x", "[1, 4]", "FP32", "[1,2,3,4]") + `],"outputs":[{"name":"proba"}]}`, status: 400, want: `{"error":"output \"proba\": the model has no such output (its outputs are \"prediction\")"}`},
		{name: "body too large", path: inferSmall, body: `{"inputs":[` + col("x", "[1, 4]", "FP32", "[1,2,3,4"+strings.Repeat(" ", 5000)+"]") + `]}`, status: 413, want: `{"error":"request body: larger than 4096 bytes"}`},
		{name: "BYTES for a code-only category", path: "/v2/models/catcodes/infer", body: `{"inputs":[` + col("size", "[1]", "FP32", "[1]") + `,` + col("color", "[1]", "BYTES", `["red"]`) + `]}`, status: 400, want: `{"error":"input \"color\": datatype BYTES, but the model knows the categories of column \"color\" only by code; send them as INT64"}`},
		{name: "text in a matrix for a code-only category", path: "/v2/models/catcodes/infer", body: `{"inputs":[` + col("x", "[1, 2]", "BYTES", `["1", "red"]`) + `]}`, status: 400, want: `{"error":"input \"x\": datatype BYTES, but the model's column \"size\" is float"}`},
		{name: "negative code", path: "/v2/models/cat/infer", body: `{"inputs":[` + col("size", "[1]", "FP32", "[1]") + `,` + col("color", "[1]", "INT64", "[-1]") + `]}`, status: 400, want: `{"error":"input \"color\", element 0: -1 is not a category code (a whole number from 0)"}`},
		{name: "BOOL for a categorical column", path: "/v2/models/cat/infer", body: `{"inputs":[` + col("size", "[1]", "FP32", "[1]") + `,` + col("color", "[1]", "BOOL", "[true]") + `]}`, status: 400, want: `{"error":"input \"color\": datatype BOOL, but the model's column \"color\" is categorical; send its categories as BYTES or INT64 codes"}`},
		{name: "fraction as a code in a matrix", path: "/v2/models/cat/infer", body: `{"inputs":[` + col("x", "[1, 2]", "FP32", "[1, 0.5]") + `]}`, status: 400, want: `{"error":"input \"x\", row 0, column \"color\": 0.5 is not a category code (a whole number from 0)"}`},
		{name: "no such model", path: "/v2/models/nope/infer", body: `{}`, status: 404, want: `{"error":"no model \"nope\""}`},
		{name: "not ready", path: "/v2/models/loading/infer", body: `{}`, status: 503, want: `{"error":"model \"loading\" is not ready"}`},
		{name: "wrong method", method: "GET", path: inferSmall, status: 404, want: `{"error":"no endpoint GET /v2/models/small/infer (or the method is not allowed there)"}`},
	}
	runErrorCases(t, h, cases)
}

const invSmall = "/deployments/small/invocations"

func TestMLflowErrors(t *testing.T) {
	h := newHarness(t, Options{MaxRows: 3, MaxBodyBytes: 4096})
	js := "application/json"
	cases := []errorCase{
		{name: "not JSON", path: invSmall, ctype: js, body: `{"inputs": [1,`, status: 400, want: `{"error_code":"BAD_REQUEST","message":"request body: invalid JSON at byte 14: unexpected end of input, expected a value"}`},
		{name: "a list", path: invSmall, ctype: js, body: `[[1,2,3,4]]`, status: 400, want: `{"error_code":"BAD_REQUEST","message":"request body: must be a JSON object with exactly one of the fields dataframe_split, dataframe_records, instances, inputs"}`},
		{name: "no format", path: invSmall, ctype: js, body: `{"params":{}}`, status: 400, want: `{"error_code":"BAD_REQUEST","message":"request body: must hold exactly one of the fields dataframe_split, dataframe_records, instances, inputs"}`},
		{name: "two formats", path: invSmall, ctype: js, body: `{"inputs":[[1,2,3,4]],"instances":[[1,2,3,4]]}`, status: 400, want: `{"error_code":"BAD_REQUEST","message":"request body: holds both inputs and instances; send exactly one of dataframe_split, dataframe_records, instances, inputs"}`},
		{name: "unknown field", path: invSmall, ctype: js, body: `{"data":[[1,2,3,4]]}`, status: 400, want: `{"error_code":"BAD_REQUEST","message":"request body: unknown field \"data\"; send exactly one of dataframe_split, dataframe_records, instances, inputs (and optionally params)"}`},
		{name: "unknown column", path: invSmall, ctype: js, body: `{"dataframe_records":[{"radius":1,"texture":2,"perimeter":3,"area":4,"height":5}]}`, status: 400, want: `{"error_code":"BAD_REQUEST","message":"column \"height\": the model has no such column (its columns are \"radius\", \"texture\", \"perimeter\", \"area\")"}`},
		{name: "missing column", path: invSmall, ctype: js, body: `{"dataframe_records":[{"radius":1,"texture":2,"perimeter":3}]}`, status: 400, want: `{"error_code":"BAD_REQUEST","message":"dataframe_records: missing column \"area\""}`},
		{name: "string in a float column", path: invSmall, ctype: js, body: `{"dataframe_split":{"columns":["radius","texture","perimeter","area"],"data":[[1,2,3,4],[1,2,3,"big"]]}}`, status: 400, want: `{"error_code":"BAD_REQUEST","message":"column \"area\", row 2: \"big\" is text, but the model's column \"area\" is float"}`},
		{name: "row too short", path: invSmall, ctype: js, body: `{"instances":[[1,2,3,4],[1,2,3]]}`, status: 400, want: `{"error_code":"BAD_REQUEST","message":"instances[1]: 3 values, but the model takes 4 features (\"radius\", \"texture\", \"perimeter\", \"area\", in that order)"}`},
		{name: "split ragged", path: invSmall, ctype: js, body: `{"dataframe_split":{"columns":["radius","texture","perimeter","area"],"data":[[1,2,3,4],[1,2,3]]}}`, status: 400, want: `{"error_code":"BAD_REQUEST","message":"dataframe_split.data[1]: 3 values, but data[0] has 4"}`},
		{name: "split columns vs data", path: invSmall, ctype: js, body: `{"dataframe_split":{"columns":["radius","texture","perimeter"],"data":[[1,2,3,4]]}}`, status: 400, want: `{"error_code":"BAD_REQUEST","message":"dataframe_split: 3 columns, but the rows of data have 4 values"}`},
		{name: "split no data", path: invSmall, ctype: js, body: `{"dataframe_split":{"columns":["radius"]}}`, status: 400, want: `{"error_code":"BAD_REQUEST","message":"dataframe_split: \"data\" is required"}`},
		{name: "duplicate column", path: invSmall, ctype: js, body: `{"dataframe_split":{"columns":["radius","radius","perimeter","area"],"data":[[1,2,3,4]]}}`, status: 400, want: `{"error_code":"BAD_REQUEST","message":"dataframe_split: column \"radius\" appears twice"}`},
		{name: "columns of different lengths", path: invSmall, ctype: js, body: `{"inputs":{"radius":[1,2],"texture":[1],"perimeter":[1,2],"area":[1,2]}}`, status: 400, want: `{"error_code":"BAD_REQUEST","message":"inputs: column \"texture\" has 1 row, but the columns before it have 2"}`},
		{name: "array in a cell", path: invSmall, ctype: js, body: `{"dataframe_records":[{"radius":[1],"texture":2,"perimeter":3,"area":4}]}`, status: 400, want: `{"error_code":"BAD_REQUEST","message":"column \"radius\", row 1: must be a single value, not an array or object"}`},
		{name: "records not objects", path: invSmall, ctype: js, body: `{"dataframe_records":[[1,2,3,4]]}`, status: 400, want: `{"error_code":"BAD_REQUEST","message":"dataframe_records[0]: must be an object of column values"}`},
		{name: "empty batch", path: invSmall, ctype: js, body: `{"instances":[]}`, status: 400, want: `{"error_code":"BAD_REQUEST","message":"instances: no rows; a request needs at least one"}`},
		{name: "too many rows", path: invSmall, ctype: js, body: `{"instances":[[1,2,3,4],[1,2,3,4],[1,2,3,4],[1,2,3,4]]}`, status: 400, want: `{"error_code":"BAD_REQUEST","message":"instances: more than 3 rows; at most 3 in one request"}`},
		{name: "scalar rows for a wide model", path: invSmall, ctype: js, body: `{"instances":[1,2]}`, status: 400, want: `{"error_code":"BAD_REQUEST","message":"instances[0]: a single value, but the model takes 4 features; send each row as an array or an object"}`},
		{name: "params not an object", path: invSmall, ctype: js, body: `{"instances":[[1,2,3,4]],"params":[1]}`, status: 400, want: `{"error_code":"BAD_REQUEST","message":"request body: \"params\" must be an object"}`},
		{name: "csv unknown column", path: invSmall, ctype: "text/csv", body: "radius,texture,perimeter,area,height\n1,2,3,4,5\n", status: 400, want: `{"error_code":"BAD_REQUEST","message":"CSV body: column \"height\": the model has no such column (its columns are \"radius\", \"texture\", \"perimeter\", \"area\")"}`},
		{name: "csv missing column", path: invSmall, ctype: "text/csv", body: "radius,texture,perimeter\n1,2,3\n", status: 400, want: `{"error_code":"BAD_REQUEST","message":"CSV body: the data has no column \"area\" (it has \"radius\", \"texture\", \"perimeter\")"}`},
		{name: "csv text in a number column", path: invSmall, ctype: "text/csv", body: "radius,texture,perimeter,area\n1,2,3,4\n1,2,3,big\n", status: 400, want: `{"error_code":"BAD_REQUEST","message":"CSV body: column \"area\", row 2: \"big\" is not a number"}`},
		{name: "csv empty", path: invSmall, ctype: "text/csv", body: "", status: 400, want: `{"error_code":"BAD_REQUEST","message":"CSV body: the file is empty: a header row naming the columns is required"}`},
		{name: "content type", path: invSmall, ctype: "application/x-www-form-urlencoded", body: "a=1", status: 415, want: `{"error_code":"BAD_REQUEST","message":"this predictor only supports the content types application/json and text/csv, not \"application/x-www-form-urlencoded\""}`},
		{name: "MLflow 1 format parameter", path: invSmall, ctype: "application/json; format=pandas-split", body: "{}", status: 415, want: `{"error_code":"BAD_REQUEST","message":"unrecognized content type parameter \"format\" (MLflow 1.x's format=pandas-split and the like are gone: wrap the data in one of dataframe_split, dataframe_records, instances, inputs)"}`},
		{name: "charset", path: invSmall, ctype: "application/json; charset=latin-1", body: "{}", status: 415, want: `{"error_code":"BAD_REQUEST","message":"the scoring server only supports UTF-8, not charset \"latin-1\""}`},
		{name: "body too large", path: invSmall, ctype: js, body: `{"instances":[[1,2,3,4]]}` + strings.Repeat(" ", 5000), status: 413, want: `{"error_code":"RESOURCE_EXHAUSTED","message":"request body: larger than 4096 bytes"}`},
		{name: "boolean as a category", path: "/deployments/cat/invocations", ctype: js, body: `{"dataframe_records":[{"size":1,"color":true}]}`, status: 400, want: `{"error_code":"BAD_REQUEST","message":"column \"color\", row 1: true is not a category code (a whole number from 0)"}`},
		{name: "text for a code-only category", path: "/deployments/catcodes/invocations", ctype: js, body: `{"dataframe_records":[{"size":1,"color":"red"}]}`, status: 400, want: `{"error_code":"BAD_REQUEST","message":"column \"color\", row 1: \"red\" is text, but the model knows the categories of column \"color\" only by code; send the codes"}`},
		{name: "csv text for a code-only category", path: "/deployments/catcodes/invocations", ctype: "text/csv", body: "size,color\n1,red\n", status: 400, want: `{"error_code":"BAD_REQUEST","message":"CSV body: column \"color\" holds text (\"red\" in row 1), but the model knows its categories only by code; pass the codes"}`},
		{name: "fractional code", path: "/deployments/cat/invocations", ctype: js, body: `{"inputs":{"size":[1],"color":[1.5]}}`, status: 400, want: `{"error_code":"BAD_REQUEST","message":"column \"color\", row 1: 1.5 is not a category code (a whole number from 0)"}`},
		{name: "no such model", path: "/deployments/nope/invocations", ctype: js, body: `{}`, status: 404, want: `{"error_code":"RESOURCE_DOES_NOT_EXIST","message":"no model \"nope\""}`},
		{name: "not ready", path: "/deployments/loading/invocations", ctype: js, body: `{}`, status: 503, want: `{"error_code":"TEMPORARILY_UNAVAILABLE","message":"model \"loading\" is not ready"}`},
		{name: "standalone with many models", path: "/invocations", ctype: js, body: `{}`, status: 404, want: `{"error_code":"RESOURCE_DOES_NOT_EXIST","message":"no model name in the path, and this server serves 6 models; use /deployments/{name}/invocations"}`},
	}
	runErrorCases(t, h, cases)
}
