package inference

import (
	"bytes"
	"fmt"
	"math"
	"net/http"
	"strings"

	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/models"
	"github.com/slipwayml/slipway/internal/tabular"
)

// MLflow's input fields.
const (
	fmtSplit     = "dataframe_split"
	fmtRecords   = "dataframe_records"
	fmtInstances = "instances"
	fmtInputs    = "inputs"
	fmtCSV       = "csv"
)

const formatList = "dataframe_split, dataframe_records, instances, inputs"

// mlRequest is the state of one MLflow scoring request being decoded.
type mlRequest struct {
	features []tabular.Feature
	sig      models.Signature
	maxRows  int
	levels   []levelIndex
	seen     []bool
	// dataframe_split: columns and the cells of data, row by row.
	cols    [][]byte
	hasCols bool
	cells   []value
	width   int
	params  []byte
}

// ServeInvocations serves MLflow's scoring protocol (POST /invocations):
// a JSON body holding exactly one of dataframe_split, dataframe_records,
// instances or inputs (and optionally params), or a text/csv body with a
// header row. It answers {"predictions": [...]}, and errors as MLflow
// does: {"error_code": "BAD_REQUEST", "message": "..."}.
//
// The model is the path value "name" (and "version", if the pattern has
// one), so the handler can be mounted at /deployments/{name}/invocations;
// without a name in the path it scores the resolver's only model, for
// standalone serving at /invocations.
func (s *Server) ServeInvocations(w http.ResponseWriter, r *http.Request) {
	c := s.get()
	defer s.put(c)
	if err := s.invocations(c, w, r); err != nil {
		s.mlflowError(w, r, err)
	}
}

// ServePing answers MLflow's health checks (GET /ping, GET /health): 200
// when the models are ready, else 503.
func (s *Server) ServePing(w http.ResponseWriter, r *http.Request) {
	if s.res.Ready(r.Context()) {
		writeBody(w, http.StatusOK, []byte("\n"))
		return
	}
	writeBody(w, http.StatusServiceUnavailable, []byte("\n"))
}

func (s *Server) mlflowError(w http.ResponseWriter, r *http.Request, err error) {
	status, code, msg := s.classify(r, err)
	b := append(make([]byte, 0, len(msg)+48), `{"error_code":`...)
	b = appendString(b, code)
	b = append(b, `,"message":`...)
	b = appendString(b, msg)
	writeBody(w, status, append(b, "}\n"...))
}

func unsupported(format string, args ...any) error {
	return &statusError{http.StatusUnsupportedMediaType, "BAD_REQUEST", fmt.Sprintf(format, args...)}
}

// contentType reads the media type, which must be JSON or CSV in UTF-8.
func contentType(h string) (string, error) {
	mt, rest, _ := strings.Cut(h, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	for rest != "" {
		var p string
		p, rest, _ = strings.Cut(rest, ";")
		k, v, _ := strings.Cut(p, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		v = strings.Trim(strings.TrimSpace(v), `"`)
		switch {
		case k == "":
		case k == "charset":
			if !strings.EqualFold(v, "utf-8") && !strings.EqualFold(v, "utf8") {
				return "", unsupported("the scoring server only supports UTF-8, not charset %q", v)
			}
		default:
			return "", unsupported("unrecognized content type parameter %q (MLflow 1.x's format=pandas-split and the like are gone: wrap the data in one of %s)", k, formatList)
		}
	}
	switch mt {
	case "", "application/json":
		return "application/json", nil
	case "text/csv":
		return "text/csv", nil
	}
	return "", unsupported("this predictor only supports the content types application/json and text/csv, not %q", mt)
}

func (s *Server) invocations(c *call, w http.ResponseWriter, r *http.Request) error {
	mt, err := contentType(headerValue(r.Header, "Content-Type"))
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	if name == "" {
		names := s.res.Names(r.Context())
		if len(names) != 1 {
			return errs.NotFoundf("no model name in the path, and this server serves %d models; use /deployments/{name}/invocations", len(names))
		}
		name = names[0]
	}
	ep, err := s.endpoint(r, name, r.PathValue("version"))
	if err != nil {
		return err
	}
	if !ep.Ready() {
		return notReady(ep)
	}
	if err := s.readBody(c, r); err != nil {
		return err
	}
	sig := ep.Signature()
	features := ep.Features()
	if mt == "text/csv" {
		err = s.decodeCSV(c, features)
	} else {
		err = s.decodeMLflowJSON(c, sig, features)
	}
	if err != nil {
		return err
	}
	c.req.Protocol = ProtocolMLflow
	nout := len(sig.Outputs)
	if err := s.infer(r, ep, c, nout); err != nil {
		return err
	}
	b := append(c.out[:0], `{"predictions":[`...)
	for row := 0; row < c.req.Rows; row++ {
		if row > 0 {
			b = append(b, ',')
		}
		if nout == 1 {
			b = appendValue(b, c.res.Outputs[row], sig.Outputs[0].Type)
			continue
		}
		b = append(b, '[')
		for k := 0; k < nout; k++ {
			if k > 0 {
				b = append(b, ',')
			}
			b = appendValue(b, c.res.Outputs[row*nout+k], sig.Outputs[k].Type)
		}
		b = append(b, ']')
	}
	b = append(b, "]}\n"...)
	c.out = b
	writeBody(w, http.StatusOK, b)
	return nil
}

// decodeCSV reads a CSV body with a header row, as tabular reads files.
func (s *Server) decodeCSV(c *call, features []tabular.Feature) error {
	t, err := tabular.ReadCSV(bytes.NewReader(c.body))
	if err != nil {
		return errs.Invalid("CSV body: %v", err)
	}
	for _, col := range t.Columns {
		if featureIndex(features, []byte(col.Name), -1) < 0 {
			return errs.Invalid("CSV body: column %q: the model has no such column (its columns are %s)", col.Name, quoteList(featureNames(features)))
		}
	}
	if t.Rows > s.opts.MaxRows {
		return errs.Invalid("CSV body: %d rows; at most %d in one request", t.Rows, s.opts.MaxRows)
	}
	x, err := t.Matrix(features)
	if err != nil {
		return errs.Invalid("CSV body: %v", err)
	}
	c.req.X, c.req.Rows, c.req.Format = x, t.Rows, fmtCSV
	return nil
}

// decodeMLflowJSON reads one of MLflow's JSON input formats into c.req.X.
func (s *Server) decodeMLflowJSON(c *call, sig models.Signature, features []tabular.Feature) error {
	m := &c.ml
	nf := len(features)
	*m = mlRequest{features: features, sig: sig, maxRows: s.opts.MaxRows, levels: m.levels[:0], seen: m.seen[:0], cols: m.cols[:0], cells: m.cells[:0]}
	for range nf {
		m.levels = append(m.levels, levelIndex{})
		m.seen = append(m.seen, false)
	}
	c.req.X = c.req.X[:0]
	c.req.Rows = 0
	sc := &c.sc
	sc.reset(c.body)
	if sc.peek() != '{' {
		return errs.Invalid("request body: must be a JSON object with exactly one of the fields %s", formatList)
	}
	var semantic error
	format := ""
	sc.object(func(key []byte) {
		if semantic != nil {
			sc.skip()
			return
		}
		k := string(key)
		switch k {
		case fmtSplit, fmtRecords, fmtInstances, fmtInputs:
			if format != "" {
				semantic = errs.Invalid("request body: holds both %s and %s; send exactly one of %s", format, k, formatList)
				sc.skip()
				return
			}
			format = k
		case "params":
			if sc.peek() != '{' {
				semantic = errs.Invalid(`request body: "params" must be an object`)
			}
			m.params = sc.raw()
			return
		default:
			semantic = errs.Invalid("request body: unknown field %q; send exactly one of %s (and optionally params)", k, formatList)
			sc.skip()
			return
		}
		switch k {
		case fmtSplit:
			semantic = m.split(sc, c)
		case fmtRecords:
			if sc.peek() != '[' {
				semantic = errs.Invalid("dataframe_records: must be an array of objects, one per row")
				sc.skip()
				return
			}
			semantic = m.rows(sc, c, k, false)
		default:
			switch sc.peek() {
			case '[':
				semantic = m.rows(sc, c, k, true)
			case '{':
				semantic = m.columns(sc, c, k)
			default:
				semantic = errs.Invalid("%s: must be an array of rows or an object of columns", k)
				sc.skip()
			}
		}
	})
	if sc.err == nil && !sc.end() {
		sc.fail("data after the request object")
	}
	if sc.err != nil {
		return errs.Invalid("request body: %v", sc.err)
	}
	if semantic != nil {
		return semantic
	}
	if format == "" {
		return errs.Invalid("request body: must hold exactly one of the fields %s", formatList)
	}
	if format == fmtSplit {
		if err := m.finishSplit(c); err != nil {
			return err
		}
	}
	if c.req.Rows == 0 {
		return errs.Invalid("%s: no rows; a request needs at least one", format)
	}
	for j := range m.seen {
		if !m.seen[j] {
			return errs.Invalid("%s: %s", format, missingMessage("column", features, m.seen))
		}
	}
	var err error
	if c.req.Parameters, err = parameters(m.params, "params"); err != nil {
		return err
	}
	c.req.Format = format
	return nil
}

// newRow appends a row of missing values.
func (m *mlRequest) newRow(c *call, format string) (int, error) {
	if c.req.Rows == m.maxRows {
		return 0, errs.Invalid("%s: more than %d rows; at most %d in one request", format, m.maxRows, m.maxRows)
	}
	nan := float32(math.NaN())
	for range m.features {
		c.req.X = append(c.req.X, nan)
	}
	c.req.Rows++
	return c.req.Rows - 1, nil
}

// set converts v for feature j into row.
func (m *mlRequest) set(c *call, row, j int, v value) error {
	f := &m.features[j]
	x, p := cell(f, &m.levels[j], v)
	if p != fine {
		return errs.Invalid("%s", problemMessage(p, fmt.Sprintf("column %q, row %d", f.Name, row+1), f, v, m.sig))
	}
	c.req.X[row*len(m.features)+j] = x
	return nil
}

func (m *mlRequest) unknownColumn(name []byte) error {
	return errs.Invalid("column %q: the model has no such column (its columns are %s)", name, quoteList(featureNames(m.features)))
}

// scalarAt reads a single value for a cell, refusing arrays and objects.
func scalarAt(sc *scanner, what func() string) (value, error) {
	v, ok := sc.scalar()
	if !ok {
		if sc.err != nil {
			return v, nil // the syntax error is reported
		}
		sc.skip()
		return v, errs.Invalid("%s: must be a single value, not an array or object", what())
	}
	return v, nil
}

// rows reads an array of rows: records (objects), and with positional
// set also arrays in the model's column order, or single values for a
// model of one column.
func (m *mlRequest) rows(sc *scanner, c *call, format string, positional bool) error {
	var err error
	nf := len(m.features)
	sc.array(func(i int) {
		if err != nil {
			sc.skip()
			return
		}
		var row int
		if row, err = m.newRow(c, format); err != nil {
			sc.skip()
			return
		}
		switch sc.peek() {
		case '{':
			err = m.record(sc, c, row, format)
		case '[':
			if !positional {
				err = errs.Invalid("%s[%d]: must be an object of column values", format, i)
				sc.skip()
				return
			}
			n := 0
			sc.array(func(j int) {
				n++
				if err != nil || j >= nf {
					sc.skip()
					return
				}
				var v value
				if v, err = scalarAt(sc, func() string { return fmt.Sprintf("%s[%d][%d]", format, i, j) }); err == nil {
					err = m.set(c, row, j, v)
				}
			})
			if err == nil && sc.err == nil && n != nf {
				err = errs.Invalid("%s[%d]: %d values, but the model takes %d features (%s, in that order)", format, i, n, nf, quoteList(featureNames(m.features)))
			}
			for j := range m.seen {
				m.seen[j] = true
			}
		default:
			if !positional {
				err = errs.Invalid("%s[%d]: must be an object of column values", format, i)
				sc.skip()
				return
			}
			if nf != 1 {
				err = errs.Invalid("%s[%d]: a single value, but the model takes %d features; send each row as an array or an object", format, i, nf)
				sc.skip()
				return
			}
			var v value
			if v, err = scalarAt(sc, func() string { return fmt.Sprintf("%s[%d]", format, i) }); err == nil {
				err = m.set(c, row, 0, v)
			}
			m.seen[0] = true
		}
	})
	return err
}

// record reads one {column: value} object into row.
func (m *mlRequest) record(sc *scanner, c *call, row int, format string) error {
	var err error
	k := 0
	base := len(m.cells) // reuse cells as a per-record "seen" marker list
	sc.object(func(key []byte) {
		defer func() { k++ }()
		if err != nil {
			sc.skip()
			return
		}
		j := featureIndex(m.features, key, k)
		if j < 0 {
			err = m.unknownColumn(key)
			sc.skip()
			return
		}
		for _, prev := range m.cells[base:] {
			if int(prev.num) == j {
				err = errs.Invalid("%s[%d]: column %q appears twice", format, row, key)
				sc.skip()
				return
			}
		}
		m.cells = append(m.cells, value{num: float64(j)})
		m.seen[j] = true
		var v value
		if v, err = scalarAt(sc, func() string { return fmt.Sprintf("column %q, row %d", key, row+1) }); err == nil {
			err = m.set(c, row, j, v)
		}
	})
	m.cells = m.cells[:base]
	return err
}

// columns reads {column: [values]} (or {column: value} for one row).
func (m *mlRequest) columns(sc *scanner, c *call, format string) error {
	var err error
	k := 0
	sc.object(func(key []byte) {
		defer func() { k++ }()
		if err != nil {
			sc.skip()
			return
		}
		j := featureIndex(m.features, key, k)
		if j < 0 {
			err = m.unknownColumn(key)
			sc.skip()
			return
		}
		if m.seen[j] {
			err = errs.Invalid("%s: column %q appears twice", format, key)
			sc.skip()
			return
		}
		m.seen[j] = true
		cells := m.cells[:0]
		if sc.peek() == '[' {
			sc.array(func(r int) {
				if err != nil {
					sc.skip()
					return
				}
				if sc.peek() == '[' { // [[v], [v]]: a column of shape [N, 1]
					n := 0
					sc.array(func(int) {
						n++
						v, e := scalarAt(sc, func() string { return fmt.Sprintf("column %q, row %d", key, r+1) })
						if e != nil && err == nil {
							err = e
						}
						cells = append(cells, v)
					})
					if n != 1 && err == nil {
						err = errs.Invalid("column %q, row %d: %d values; a column holds one value per row", key, r+1, n)
					}
					return
				}
				v, e := scalarAt(sc, func() string { return fmt.Sprintf("column %q, row %d", key, r+1) })
				if e != nil {
					err = e
				}
				cells = append(cells, v)
			})
		} else {
			var v value
			v, err = scalarAt(sc, func() string { return fmt.Sprintf("column %q", key) })
			cells = append(cells, v)
		}
		m.cells = cells
		if err != nil || sc.err != nil {
			return
		}
		if c.req.Rows == 0 && len(c.req.X) == 0 {
			if len(cells) > m.maxRows {
				err = errs.Invalid("%s: %d rows; at most %d in one request", format, len(cells), m.maxRows)
				return
			}
			for range cells {
				if _, err = m.newRow(c, format); err != nil {
					return
				}
			}
			if len(cells) == 0 {
				err = errs.Invalid("%s: column %q: no rows; a request needs at least one", format, key)
				return
			}
		} else if len(cells) != c.req.Rows {
			err = errs.Invalid("%s: column %q has %d %s, but the columns before it have %d", format, key, len(cells), plural(int64(len(cells)), "row"), c.req.Rows)
			return
		}
		for r, v := range cells {
			if err = m.set(c, r, j, v); err != nil {
				return
			}
		}
	})
	return err
}

// split reads a dataframe_split object: columns, data and index, in any
// order. The cells are converted in finishSplit, once the columns are
// known.
func (m *mlRequest) split(sc *scanner, c *call) error {
	if sc.peek() != '{' {
		sc.skip()
		return errs.Invalid(`dataframe_split: must be an object with "columns" and "data"`)
	}
	var err error
	hasData := false
	m.width = -1
	sc.object(func(key []byte) {
		if err != nil {
			sc.skip()
			return
		}
		switch string(key) {
		case "columns":
			m.hasCols = true
			if sc.peek() != '[' {
				err = errs.Invalid("dataframe_split.columns: must be an array of column names")
				sc.skip()
				return
			}
			sc.array(func(i int) {
				if sc.peek() != '"' {
					if err == nil {
						err = errs.Invalid("dataframe_split.columns[%d]: must be a string", i)
					}
					sc.skip()
					return
				}
				name, _ := sc.str()
				m.cols = append(m.cols, name)
			})
		case "index":
			sc.skip()
		case "data":
			hasData = true
			if sc.peek() != '[' {
				err = errs.Invalid("dataframe_split.data: must be an array of rows")
				sc.skip()
				return
			}
			rows := 0
			sc.array(func(i int) {
				if err != nil {
					sc.skip()
					return
				}
				rows++
				if rows > m.maxRows {
					err = errs.Invalid("dataframe_split: more than %d rows; at most %d in one request", m.maxRows, m.maxRows)
					sc.skip()
					return
				}
				if sc.peek() != '[' {
					err = errs.Invalid("dataframe_split.data[%d]: must be an array of values", i)
					sc.skip()
					return
				}
				n := 0
				sc.array(func(j int) {
					n++
					v, e := scalarAt(sc, func() string { return fmt.Sprintf("dataframe_split.data[%d][%d]", i, j) })
					if e != nil && err == nil {
						err = e
					}
					m.cells = append(m.cells, v)
				})
				if m.width < 0 {
					m.width = n
				} else if n != m.width && err == nil {
					err = errs.Invalid("dataframe_split.data[%d]: %d values, but data[0] has %d", i, n, m.width)
				}
			})
		default:
			err = errs.Invalid("dataframe_split: unknown field %q (it has columns, data and index)", key)
			sc.skip()
		}
	})
	if err == nil && sc.err == nil && !hasData {
		err = errs.Invalid(`dataframe_split: "data" is required`)
	}
	return err
}

// finishSplit maps dataframe_split's columns onto the features and
// converts its cells.
func (m *mlRequest) finishSplit(c *call) error {
	nf := len(m.features)
	if m.width < 0 {
		m.width = 0
	}
	rows := 0
	if m.width > 0 {
		rows = len(m.cells) / m.width
	}
	var idx []int
	if m.hasCols {
		if m.width > 0 && len(m.cols) != m.width {
			return errs.Invalid("dataframe_split: %d columns, but the rows of data have %d values", len(m.cols), m.width)
		}
		idx = c.idx[:0]
		for k, name := range m.cols {
			j := featureIndex(m.features, name, k)
			if j < 0 {
				return m.unknownColumn(name)
			}
			if m.seen[j] {
				return errs.Invalid("dataframe_split: column %q appears twice", name)
			}
			m.seen[j] = true
			idx = append(idx, j)
		}
		c.idx = idx
	} else {
		if rows > 0 && m.width != nf {
			return errs.Invalid(`dataframe_split: rows of %d values and no "columns", but the model takes %d features (%s)`, m.width, nf, quoteList(featureNames(m.features)))
		}
		for j := range m.seen {
			m.seen[j] = true
		}
	}
	for range rows {
		if _, err := m.newRow(c, fmtSplit); err != nil {
			return err
		}
	}
	for i, v := range m.cells {
		r, k := i/m.width, i%m.width
		j := k
		if idx != nil {
			j = idx[k]
		}
		if err := m.set(c, r, j, v); err != nil {
			return err
		}
	}
	return nil
}
