package profile

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
)

// Batches bound memory: the reader fills at most batchPool of them, each
// about batchBytes, and waits for the column workers to hand one back.
const (
	batchBytes = 1 << 20
	batchRows  = 8192
	batchPool  = 8
	// maxLineBytes is the longest CSV record read; a longer one is surely
	// not tabular data and would otherwise grow the buffer without bound.
	maxLineBytes = 64 << 20
)

// batch is a run of records copied into one arena; field f of row r is
// arena[offs[2*(r*cols+f)]:offs[2*(r*cols+f)+1]].
type batch struct {
	arena   []byte
	offs    []uint32
	rows    int
	pending atomic.Int32
}

// CSV profiles comma-separated text with a header row, as pandas' read_csv
// reads it by default: RFC 4180 quoting, blank lines skipped, short rows
// padded with missing values, pandas' missing-value strings ("", NA, NaN,
// null, ...), and duplicate or empty header names renamed as pandas does.
// The file is read once, in bounded memory; columns are spread over
// GOMAXPROCS workers.
func CSV(r io.Reader) (*Profile, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	lr := &lineReader{r: br}
	header, err := lr.record(nil)
	if err == io.EOF {
		return &Profile{Format: "csv", Columns: []Column{}}, nil
	}
	if err != nil {
		return nil, err
	}
	header = bytes.TrimPrefix(header, []byte("\xef\xbb\xbf"))
	names, err := splitRecord(header, nil, lr)
	if err != nil {
		return nil, err
	}
	cols := len(names)
	if cols > MaxColumns {
		return nil, fmt.Errorf("line 1: %d columns; at most %d are profiled", cols, MaxColumns)
	}
	accs := make([]*acc, cols)
	for i, n := range headerNames(names) {
		accs[i] = newAcc(n, "")
	}

	// Work is one column of one batch. Tasks are queued batch by batch and
	// taken in queue order by GOMAXPROCS workers, so columns of unequal cost
	// spread evenly; a column's batches are applied strictly in file order
	// (each waits for its predecessor, which was taken earlier and so is
	// already running), which keeps profiles reproducible.
	type task struct {
		b   *batch
		seq int64
		col int
	}
	workers := runtime.GOMAXPROCS(0)
	free := make(chan *batch, batchPool)
	for range batchPool {
		free <- &batch{arena: make([]byte, 0, batchBytes+batchBytes/4)}
	}
	tasks := make(chan task, batchPool*cols)
	turns := make([]columnTurn, cols)
	for i := range turns {
		turns[i].cond.L = &turns[i].mu
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for t := range tasks {
				turn := &turns[t.col]
				turn.mu.Lock()
				for turn.next != t.seq {
					turn.cond.Wait()
				}
				turn.mu.Unlock()
				a, b := accs[t.col], t.b
				for r := range b.rows {
					i := 2 * (r*cols + t.col)
					a.addText(b.arena[b.offs[i]:b.offs[i+1]])
				}
				turn.mu.Lock()
				turn.next++
				turn.cond.Broadcast()
				turn.mu.Unlock()
				if b.pending.Add(-1) == 0 {
					free <- b
				}
			}
		}()
	}

	var rows int64
	readErr := func() error {
		var fields [][]byte
		var seq int64
		for {
			b := <-free
			b.arena, b.offs, b.rows = b.arena[:0], b.offs[:0], 0
			for b.rows < batchRows && len(b.arena) < batchBytes {
				line, err := lr.record(nil)
				if err == io.EOF {
					break
				}
				if err != nil {
					return err
				}
				if len(line) == 0 {
					continue // pandas skips blank lines
				}
				fields, err = splitRecord(line, fields[:0], lr)
				if err != nil {
					return err
				}
				if len(fields) > cols {
					return fmt.Errorf("line %d: %d fields, but the header has %d", lr.line, len(fields), cols)
				}
				for f := range cols {
					start := uint32(len(b.arena))
					if f < len(fields) {
						b.arena = append(b.arena, fields[f]...)
					}
					b.offs = append(b.offs, start, uint32(len(b.arena)))
				}
				b.rows++
			}
			if b.rows == 0 {
				return nil
			}
			rows += int64(b.rows)
			b.pending.Store(int32(cols))
			for c := range cols {
				tasks <- task{b: b, seq: seq, col: c}
			}
			seq++
		}
	}()
	close(tasks)
	wg.Wait()
	if readErr != nil {
		return nil, readErr
	}
	p := &Profile{Format: "csv", Rows: rows, Columns: make([]Column, cols)}
	for i, a := range accs {
		p.Columns[i] = a.result()
	}
	return p, nil
}

// columnTurn orders the batches of one column.
type columnTurn struct {
	mu   sync.Mutex
	cond sync.Cond
	next int64
}

// headerNames renames as pandas does: an empty name becomes "Unnamed: i",
// and a repeated name gets ".1", ".2", ... appended.
func headerNames(fields [][]byte) []string {
	out := make([]string, len(fields))
	seen := map[string]int{}
	for i, f := range fields {
		n := string(f)
		if n == "" {
			n = "Unnamed: " + strconv.Itoa(i)
		}
		if k, dup := seen[n]; dup {
			base := n
			for {
				k++
				n = base + "." + strconv.Itoa(k)
				if _, taken := seen[n]; !taken {
					break
				}
			}
			seen[base] = k
		}
		seen[n] = 0
		out[i] = n
	}
	return out
}

// lineReader returns physical lines without their line ending.
type lineReader struct {
	r    *bufio.Reader
	buf  []byte
	line int
}

// record returns the next line, appended to dst; the result is valid until
// the next call.
func (l *lineReader) record(dst []byte) ([]byte, error) {
	line, err := l.r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		l.buf = append(l.buf[:0], line...)
		for err == bufio.ErrBufferFull {
			line, err = l.r.ReadSlice('\n')
			l.buf = append(l.buf, line...)
			if len(l.buf) > maxLineBytes {
				return nil, fmt.Errorf("line %d: longer than %d bytes", l.line+1, maxLineBytes)
			}
		}
		line = l.buf
	}
	if err != nil && err != io.EOF {
		return nil, err
	}
	if err == io.EOF && len(line) == 0 {
		return nil, io.EOF
	}
	l.line++
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	if dst != nil {
		return append(dst, line...), nil
	}
	return line, nil
}

var errQuote = errors.New("unterminated quoted field")

// splitRecord splits line into fields. Lines without quotes, nearly all
// of them in practice, are cut at commas directly; a quoted field is
// unescaped into a fresh buffer and may continue over following lines.
func splitRecord(line []byte, fields [][]byte, lr *lineReader) ([][]byte, error) {
	if bytes.IndexByte(line, '"') < 0 {
		for {
			i := bytes.IndexByte(line, ',')
			if i < 0 {
				return append(fields, line), nil
			}
			fields = append(fields, line[:i])
			line = line[i+1:]
		}
	}
	startLine := lr.line
	// The line may live in the reader's buffer, which reading a
	// continuation line would overwrite.
	line = append([]byte(nil), line...)
	var field []byte
	for {
		if len(line) == 0 || line[0] != '"' {
			i := bytes.IndexByte(line, ',')
			if i < 0 {
				return append(fields, line), nil
			}
			fields = append(fields, line[:i])
			line = line[i+1:]
			continue
		}
		// Quoted field.
		line = line[1:]
		field = nil
		for {
			i := bytes.IndexByte(line, '"')
			if i < 0 {
				field = append(field, line...)
				field = append(field, '\n')
				next, err := lr.record(nil)
				if err == io.EOF {
					return nil, fmt.Errorf("line %d: %w", startLine, errQuote)
				}
				if err != nil {
					return nil, err
				}
				line = append([]byte(nil), next...)
				continue
			}
			field = append(field, line[:i]...)
			line = line[i+1:]
			if len(line) > 0 && line[0] == '"' {
				field = append(field, '"')
				line = line[1:]
				continue
			}
			break
		}
		// Text after the closing quote up to the comma belongs to the field,
		// as pandas keeps it.
		i := bytes.IndexByte(line, ',')
		if i < 0 {
			return append(fields, append(field, line...)), nil
		}
		fields = append(fields, append(field, line[:i]...))
		line = line[i+1:]
	}
}
