package http1

import (
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
)

// response buffers a handler's answer; answer writes it with one system
// call. It is reused for the connection's next request, so a handler must
// not keep it, as with net/http.
type response struct {
	header http.Header
	status int
	wrote  bool
	// head holds the status line and the handler's headers as they were
	// at WriteHeader: later changes have no effect, as in net/http.
	head                    []byte
	hasType, hasDate, close bool
	body                    []byte
}

func (w *response) reset() {
	if w.header == nil {
		w.header = make(http.Header, 4)
	} else {
		clear(w.header)
	}
	w.status, w.wrote = 0, false
	w.hasType, w.hasDate, w.close = false, false, false
	w.head, w.body = w.head[:0], w.body[:0]
}

func (w *response) Header() http.Header { return w.header }

func (w *response) WriteHeader(code int) {
	if w.wrote {
		return
	}
	if code < 100 || code > 999 {
		panic("http1: invalid WriteHeader code " + strconv.Itoa(code))
	}
	if code < 200 {
		return // informational answers are not sent on the fast path
	}
	w.wrote, w.status = true, code
	w.head = append(w.head, "HTTP/1.1 "...)
	w.head = strconv.AppendInt(w.head, int64(code), 10)
	w.head = append(w.head, ' ')
	if text := http.StatusText(code); text != "" {
		w.head = append(w.head, text...)
	} else {
		w.head = append(w.head, "status code "...)
		w.head = strconv.AppendInt(w.head, int64(code), 10)
	}
	w.head = append(w.head, "\r\n"...)
	for k, vs := range w.header {
		switch k {
		case "Content-Length", "Transfer-Encoding": // the buffered body's length is sent instead
			continue
		case "Content-Type":
			w.hasType = true
		case "Date":
			w.hasDate = true
		case "Connection":
			w.close = w.close || httpguts.HeaderValuesContainsToken(vs, "close")
		}
		if !isToken(k) {
			continue
		}
		for _, v := range vs {
			w.head = append(w.head, k...)
			w.head = append(w.head, ": "...)
			w.head = appendValue(w.head, v)
			w.head = append(w.head, "\r\n"...)
		}
	}
}

// appendValue appends a header value with CR and LF made spaces, as
// net/http does, so that a value cannot start a header of its own.
func appendValue(b []byte, v string) []byte {
	if !strings.ContainsAny(v, "\r\n") {
		return append(b, v...)
	}
	for i := 0; i < len(v); i++ {
		ch := v[i]
		if ch == '\r' || ch == '\n' {
			ch = ' '
		}
		b = append(b, ch)
	}
	return b
}

func (w *response) Write(p []byte) (int, error) { return appendBody(w, p) }

func (w *response) WriteString(s string) (int, error) { return appendBody(w, s) }

func appendBody[T string | []byte](w *response, b T) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	w.body = append(w.body, b...)
	return len(b), nil
}

func bodyAllowed(status int) bool {
	return status != http.StatusNoContent && status != http.StatusNotModified
}

// finish appends the whole answer to out: the head, the headers net/http
// would add, and the body.
func (w *response) finish(out []byte, close bool) []byte {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	out = append(out, w.head...)
	if bodyAllowed(w.status) {
		if !w.hasType && len(w.body) > 0 {
			out = append(out, "Content-Type: "...)
			out = append(out, http.DetectContentType(w.body)...)
			out = append(out, "\r\n"...)
		}
		out = append(out, "Content-Length: "...)
		out = strconv.AppendInt(out, int64(len(w.body)), 10)
		out = append(out, "\r\n"...)
	}
	if !w.hasDate {
		out = append(out, "Date: "...)
		out = append(out, httpDate()...)
		out = append(out, "\r\n"...)
	}
	if close {
		out = append(out, "Connection: close\r\n"...)
	}
	out = append(out, "\r\n"...)
	return append(out, w.body...)
}

// answer serves r and writes the answer. It says whether the connection
// stays open for another request.
func (c *conn) answer(r *http.Request) (keep bool) {
	w := &c.w
	w.reset()
	defer func() {
		if p := recover(); p != nil {
			// As net/http does: the connection closes with no answer.
			if p != http.ErrAbortHandler {
				c.s.Log.Error("panic serving request", "method", r.Method, "path", r.URL.Path, "panic", p, "stack", string(debug.Stack()))
			}
			keep = false
		}
	}()
	c.s.Handler.ServeHTTP(w, r)
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	keep = !r.Close && !w.close && !c.s.closing.Load()
	c.out = w.finish(c.out[:0], !keep)
	if _, err := c.nc.Write(c.out); err != nil {
		return false
	}
	if len(c.out) > 64<<10 {
		c.out = nil
	}
	if len(w.body) > 64<<10 {
		w.body = nil
	}
	return keep
}

// httpDate is the Date header's value, formatted once a second.
func httpDate() []byte {
	now := time.Now()
	sec := now.Unix()
	if d := cachedDate.Load(); d != nil && d.sec == sec {
		return d.text
	}
	d := &dateText{sec: sec, text: now.UTC().AppendFormat(nil, http.TimeFormat)}
	cachedDate.Store(d)
	return d.text
}

type dateText struct {
	sec  int64
	text []byte
}

var cachedDate atomic.Pointer[dateText]
