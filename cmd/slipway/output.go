package main

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/slipwayml/slipway/internal/errs"
)

// writeJSON prints v indented, for people and for jq alike; HTML escaping
// is off so that "<" in a filter or a tag reads as itself.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// writeJSONFile writes v as indented JSON to path, a file a command was
// asked to write with flag, creating its folder if needed (a pipeline
// step's output may sit in a folder nothing created yet). The file is
// written whole to a temporary name and renamed into place, so a reader
// never sees half of it.
func writeJSONFile(flag, path string, v any) error {
	var buf bytes.Buffer
	if err := writeJSON(&buf, v); err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return errs.Invalid("%s %s: %v", flag, path, err)
	}
	tmp, err := os.CreateTemp(dir, ".slipway-*.json")
	if err != nil {
		return errs.Invalid("%s %s: %v", flag, path, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(buf.Bytes())
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return errs.Invalid("%s %s: %v", flag, path, err)
	}
	return nil
}

// table aligns tab-separated rows into columns.
type table struct {
	tw  *tabwriter.Writer
	buf bytes.Buffer
	out io.Writer
}

func newTable(w io.Writer) *table {
	t := &table{out: w}
	t.tw = tabwriter.NewWriter(&t.buf, 0, 4, 2, ' ', 0)
	return t
}

func (t *table) Write(p []byte) (int, error) { return t.tw.Write(p) }

// Flush writes the aligned rows. tabwriter pads a row whose last cells are
// empty out to the full width; that trailing space is dropped so output
// diffs and copies cleanly.
func (t *table) Flush() error {
	if err := t.tw.Flush(); err != nil {
		return err
	}
	var b strings.Builder
	for _, line := range strings.SplitAfter(t.buf.String(), "\n") {
		if body, ok := strings.CutSuffix(line, "\n"); ok {
			b.WriteString(strings.TrimRight(body, " "))
			b.WriteByte('\n')
		} else {
			b.WriteString(line)
		}
	}
	t.buf.Reset()
	_, err := io.WriteString(t.out, b.String())
	return err
}

// tableRow writes cells as one tab-separated row. Tabs and newlines inside
// a value would break the columns, so they are shown as spaces.
func tableRow(w io.Writer, cells ...string) {
	for i, c := range cells {
		cells[i] = strings.Map(func(r rune) rune {
			if r == '\t' || r == '\n' || r == '\r' {
				return ' '
			}
			return r
		}, c)
	}
	io.WriteString(w, strings.Join(cells, "\t")+"\n")
}

// fmtTime shows a millisecond timestamp in local time to the minute, which
// is what one scans a run list by.
func fmtTime(ms int64) string {
	if ms == 0 {
		return "-"
	}
	return time.UnixMilli(ms).Local().Format("2006-01-02 15:04")
}

// fmtTimeLong is fmtTime with seconds and the zone, for a single run.
func fmtTimeLong(ms int64) string {
	if ms == 0 {
		return "-"
	}
	return time.UnixMilli(ms).Local().Format("2006-01-02 15:04:05 MST")
}

// runDuration is the run's wall time, or "-" while it has not ended.
func runDuration(start, end int64) string {
	if start == 0 || end == 0 || end < start {
		return "-"
	}
	return fmtDuration(time.Duration(end-start) * time.Millisecond)
}

// fmtDuration rounds to what matters at each scale and drops zero tails:
// 350ms, 12.3s, 1m20s, 2h5m, 26h.
func fmtDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	case d < time.Hour:
		return d.Round(time.Second).String()
	}
	s := d.Round(time.Minute).String() // "2h5m0s"
	s = strings.TrimSuffix(s, "0s")
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// fmtMetric prints a metric value compactly; six significant digits are
// enough to compare runs and keep columns narrow.
func fmtMetric(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(v, 'g', 6, 64)
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// truncate shortens s to n runes, marking the cut.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// termWidth is the width tables are fitted to. Without a terminal library
// the COLUMNS variable that shells export is the best guess; 120 suits most
// windows and keeps piped output stable.
func termWidth() int {
	if n, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && n >= 40 {
		return n
	}
	return 120
}
