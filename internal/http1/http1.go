// Package http1 serves the data plane's requests (model inference) on an
// HTTP/1.1 connection loop of its own, and hands every other connection to
// a net/http server.
//
// net/http spends about as much CPU on a small request as Slipway spends
// scoring it: per-request goroutine hand-offs, a background read that
// costs a system call, and header maps and writers built for streaming.
// The data plane answers small requests with bodies of known length, so
// this loop reads a whole request into the connection's buffer, calls the
// same http.Handler (middleware, routing and handlers are unchanged), and
// writes the buffered answer with one system call.
//
// Only requests this loop can answer exactly as net/http would are taken:
// HTTP/1.1 with a Host header, a Content-Length (or no body), no
// Transfer-Encoding, Expect or Upgrade, well-formed header lines, and a
// method and path the Server's Fast function accepts. At the first request
// that is not, the connection, with the bytes already read, goes to the
// fallback net/http server, which keeps it until it closes.
package http1

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
)

// Limits of the fast path; a request beyond them is handed to net/http,
// which applies its own.
const (
	maxHeaderBytes = 16 << 10
	maxBodyBytes   = 1 << 20
)

// Server serves connections from a listener.
type Server struct {
	// Handler answers the requests Fast accepts. A connection reuses the
	// request (its URL, header and body) and the ResponseWriter for its
	// next request, so Handler must not keep any of them once it returns.
	Handler http.Handler
	// Fast says whether a request with this method and path (the
	// request target up to '?', still escaped) takes the fast path.
	Fast func(method, path string) bool
	// Fallback serves every connection handed over. Its Handler should be
	// the same as Handler. Shutdown shuts it down too.
	Fallback *http.Server
	// IdleTimeout bounds the wait for a connection's next request and
	// ReadHeaderTimeout the time to read a request's header (and body);
	// zero means none.
	IdleTimeout, ReadHeaderTimeout time.Duration
	// Log receives panics that escape the handler, and accept errors.
	Log *slog.Logger

	handoff  *chanListener
	mu       sync.Mutex
	ln       net.Listener
	conns    map[*conn]struct{}
	closing  atomic.Bool
	done     chan struct{}
	initOnce sync.Once
}

func (s *Server) init() {
	s.initOnce.Do(func() {
		s.conns = map[*conn]struct{}{}
		s.done = make(chan struct{})
		s.handoff = &chanListener{conns: make(chan net.Conn), done: s.done}
		if s.Log == nil {
			s.Log = slog.Default()
		}
	})
}

// Serve accepts connections on ln until Shutdown, serving each on the fast
// path until it is handed over. It returns http.ErrServerClosed after
// Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	s.init()
	s.handoff.addr = ln.Addr()
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		ln.Close()
		return http.ErrServerClosed
	}
	s.ln = ln
	s.mu.Unlock()
	go s.Fallback.Serve(s.handoff) // returns once Shutdown ends the handoff listener
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return http.ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Out of file descriptors and the like: wait and retry, as
			// net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.Log.Warn("accepting a connection", "err", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		c := newConn(s, nc)
		if !s.track(c) {
			nc.Close()
			return http.ErrServerClosed
		}
		go c.serve()
	}
}

func (s *Server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) forget(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// Shutdown stops accepting connections, closes idle ones, waits for
// requests in flight to be answered, and shuts the fallback server down
// the same way. When ctx ends first, the remaining connections are closed
// and ctx's error is returned.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.mu.Lock()
	if !s.closing.Swap(true) {
		close(s.done)
	}
	if s.ln != nil {
		s.ln.Close()
	}
	s.mu.Unlock()
	fallback := make(chan error, 1)
	go func() { fallback <- s.Fallback.Shutdown(ctx) }()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if s.closeIdle() {
			return <-fallback
		}
		select {
		case <-ctx.Done():
			s.mu.Lock()
			for c := range s.conns {
				c.nc.Close()
			}
			s.mu.Unlock()
			<-fallback
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// closeIdle closes the connections waiting for a request and says whether
// none is left.
func (s *Server) closeIdle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.state.CompareAndSwap(stateIdle, stateClosed) {
			c.nc.Close()
		}
	}
	return len(s.conns) == 0
}

// Connection states: a connection is idle between requests, active from
// a request's first byte to its answer; Shutdown closes only idle ones.
const (
	stateIdle int32 = iota
	stateActive
	stateClosed
)

type conn struct {
	s      *Server
	nc     net.Conn
	remote string
	state  atomic.Int32
	// deadline says a read deadline is set.
	deadline bool
	cancel   context.CancelFunc
	// buf[start:end] is what has been read and not yet consumed.
	buf        []byte
	start, end int
	w          response
	out        []byte       // the answer as written
	seen       []seenHeader // the last value of each header, see headerValue
	// The request being served and what it points to, reused for the
	// connection's next request (see Server.Handler).
	req    http.Request
	blank  *http.Request // an empty request carrying the context, copied into req
	uri    string
	url    url.URL
	header http.Header
	values []string // the header's values, one backing array for all
	body   body
}

func newConn(s *Server, nc net.Conn) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	ctx = context.WithValue(ctx, http.LocalAddrContextKey, nc.LocalAddr())
	c := &conn{s: s, nc: nc, remote: nc.RemoteAddr().String(), cancel: cancel, buf: make([]byte, 4096)}
	c.setContext(ctx)
	return c
}

// setContext sets the context of the connection's requests. http.Request
// has no setter, so the copy WithContext makes is kept and copied from.
func (c *conn) setContext(ctx context.Context) {
	c.blank = new(http.Request).WithContext(ctx)
}

// serve answers requests until the connection closes or is handed over.
func (c *conn) serve() {
	handedOff := false
	defer func() {
		c.cancel()
		c.s.forget(c)
		if !handedOff {
			c.nc.Close()
		}
	}()
	for {
		req, n, ok, err := c.readRequest()
		if err != nil {
			return
		}
		if !ok {
			handedOff = c.handOff()
			return
		}
		keep := c.answer(req)
		c.consume(n)
		if !keep || !c.state.CompareAndSwap(stateActive, stateIdle) || c.s.closing.Load() {
			return
		}
	}
}

// handOff gives the connection, and what was read of it, to the fallback
// server. It says whether the fallback took it.
func (c *conn) handOff() bool {
	c.nc.SetReadDeadline(time.Time{})
	pending := append([]byte(nil), c.buf[c.start:c.end]...)
	select {
	case c.s.handoff.conns <- &replayConn{Conn: c.nc, pending: pending}:
		return true
	case <-c.s.done:
		return false
	}
}

// consume drops the n bytes of an answered request from the buffer. A
// buffer a large body grew is given back once it is empty.
func (c *conn) consume(n int) {
	c.start += n
	if c.start == c.end {
		c.start, c.end = 0, 0
		if len(c.buf) > 64<<10 {
			c.buf = make([]byte, 4096)
		}
	}
}

// fill reads more bytes into the buffer. limit bounds how many bytes
// from c.start the buffer may hold: when that many are held, fill says
// there is no room.
func (c *conn) fill(limit int) (bool, error) {
	if c.end == len(c.buf) {
		held := c.end - c.start
		if held >= limit {
			return false, nil
		}
		dst := c.buf
		if len(c.buf) < limit {
			dst = make([]byte, min(2*len(c.buf), limit))
		}
		c.end = copy(dst, c.buf[c.start:c.end])
		c.start = 0
		c.buf = dst
	}
	n, err := c.nc.Read(c.buf[c.end:])
	c.end += n
	if n > 0 {
		return true, nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return true, err
}

// readRequest reads one request. It returns the request and the bytes it
// spans, or ok false (with nothing consumed) when the fast path does not
// take it; err means the connection is done.
//
// Deadlines cost a timer update each, so a request that arrives whole
// sets none: the idle deadline set before the wait covers its first read,
// and ReadHeaderTimeout starts only when a request needs a second one.
func (c *conn) readRequest() (req *http.Request, n int, ok bool, err error) {
	if c.start == c.end {
		if t := c.s.IdleTimeout; t > 0 {
			c.nc.SetReadDeadline(time.Now().Add(t))
			c.deadline = true
		} else if c.deadline {
			c.nc.SetReadDeadline(time.Time{})
			c.deadline = false
		}
		if _, err := c.fill(maxHeaderBytes); err != nil {
			c.state.Store(stateClosed)
			return nil, 0, false, err
		}
	}
	if !c.state.CompareAndSwap(stateIdle, stateActive) {
		return nil, 0, false, net.ErrClosed // Shutdown closed it first
	}
	waited := false
	more := func(limit int) (bool, error) {
		if !waited {
			waited = true
			if t := c.s.ReadHeaderTimeout; t > 0 {
				c.nc.SetReadDeadline(time.Now().Add(t))
				c.deadline = true
			}
		}
		return c.fill(limit)
	}
	var head int
	for {
		if i := bytes.Index(c.buf[c.start:c.end], crlfcrlf); i >= 0 {
			head = i + len(crlfcrlf)
			break
		}
		room, err := more(maxHeaderBytes)
		if !room {
			return nil, 0, false, nil
		}
		if err != nil {
			return nil, 0, false, err
		}
	}
	req, bodyLen, ok := c.parseHead(c.buf[c.start : c.start+head])
	if !ok {
		return nil, 0, false, nil
	}
	for c.end-c.start < head+bodyLen {
		if _, err := more(head + bodyLen); err != nil {
			return nil, 0, false, err
		}
	}
	c.body = body{b: c.buf[c.start+head : c.start+head+bodyLen]}
	req.Body = &c.body
	return req, head + bodyLen, true, nil
}

var crlfcrlf = []byte("\r\n\r\n")

// parseHead parses a request line and header block (ending in an empty
// line) into a request, or says the fast path does not take it.
func (c *conn) parseHead(b []byte) (*http.Request, int, bool) {
	line, rest, _ := bytes.Cut(b, crlf)
	method, line, ok1 := bytes.Cut(line, sp)
	target, proto, ok2 := bytes.Cut(line, sp)
	if !ok1 || !ok2 || string(proto) != "HTTP/1.1" || len(target) == 0 || target[0] != '/' || !isToken(method) {
		return nil, 0, false
	}
	m := methodString(method)
	if m == "" {
		return nil, 0, false
	}
	// A keep-alive client usually asks for the same target again.
	if string(target) != c.uri {
		c.uri = string(target)
	}
	uri := c.uri
	path, _, _ := strings.Cut(uri, "?")
	if !c.s.Fast(m, path) {
		return nil, 0, false
	}
	// One backing array for every header's value slice, as net/http does.
	// What an unusually large header grew is not kept: clearing a map
	// costs in proportion to its size.
	if len(c.header) > maxKeptHeaders || c.header == nil {
		c.header = make(http.Header, 8)
	} else {
		clear(c.header)
	}
	h := c.header
	values := c.values[:0]
	if lines := max(bytes.Count(rest, crlf)-1, 0); cap(values) < lines || cap(values) > maxKeptHeaders {
		values = make([]string, 0, lines)
	}
	host, hasHost, length := "", false, -1
	for len(rest) > 2 {
		var l []byte
		l, rest, _ = bytes.Cut(rest, crlf)
		name, value, ok := bytes.Cut(l, colon)
		if !ok || !isToken(name) || !validValue(value) {
			return nil, 0, false
		}
		key := canonicalKey(name)
		v := c.headerValue(key, bytes.Trim(value, " \t"))
		switch key {
		case "Host":
			if hasHost {
				return nil, 0, false
			}
			host, hasHost = v, true
			continue // net/http keeps it in Request.Host only
		case "Content-Length":
			n, ok := contentLength(v)
			if !ok || length >= 0 {
				return nil, 0, false
			}
			length = n
		case "Transfer-Encoding", "Expect", "Upgrade", "Te", "Trailer":
			return nil, 0, false
		}
		values = append(values, v) // never grows: there is room for every line
		if vs, ok := h[key]; ok {
			h[key] = append(vs, v)
		} else {
			h[key] = values[len(values)-1 : len(values) : len(values)]
		}
	}
	if host == "" {
		return nil, 0, false
	}
	c.values = values
	u, err := requestURL(&c.url, uri)
	if err != nil {
		return nil, 0, false
	}
	r := &c.req
	*r = *c.blank
	r.Method, r.URL, r.Proto, r.ProtoMajor, r.ProtoMinor = m, u, "HTTP/1.1", 1, 1
	r.Header, r.Host, r.RemoteAddr, r.RequestURI = h, host, c.remote, uri
	r.ContentLength = max(int64(length), 0)
	r.Close = httpguts.HeaderValuesContainsToken(h["Connection"], "close")
	return r, max(length, 0), true
}

// headerValue returns b as a string. A keep-alive client sends the same
// headers request after request, so the connection keeps the last value
// of each header and reuses it when b is the same, instead of copying.
func (c *conn) headerValue(key string, b []byte) string {
	for i := range c.seen {
		if c.seen[i].key == key {
			if c.seen[i].value != string(b) {
				c.seen[i].value = string(b)
			}
			return c.seen[i].value
		}
	}
	v := string(b)
	if len(c.seen) < maxSeenHeaders {
		c.seen = append(c.seen, seenHeader{key, v})
	}
	return v
}

// maxSeenHeaders bounds the headers a connection keeps values of, and
// maxKeptHeaders the header lines its reused header map and values hold.
const (
	maxSeenHeaders = 16
	maxKeptHeaders = 64
)

type seenHeader struct{ key, value string }

// contentLength parses a Content-Length the fast path takes: digits only
// (net/http refuses a sign), at most maxBodyBytes.
func contentLength(v string) (int, bool) {
	if v == "" || len(v) > 10 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, false
		}
		n = n*10 + int(v[i]-'0')
	}
	return n, n <= maxBodyBytes
}

// requestURL parses a request target as url.ParseRequestURI does. A
// path of unreserved characters and slashes, the usual case, is its own
// Path, which saves the parser's work: it is set in u, which is returned.
func requestURL(u *url.URL, target string) (*url.URL, error) {
	path, query, hasQuery := strings.Cut(target, "?")
	for i := 0; i < len(target); i++ {
		ch := target[i]
		if ch <= ' ' || ch == 0x7f || ch == '#' || (i < len(path) && !pathChars[ch]) {
			return url.ParseRequestURI(target)
		}
	}
	*u = url.URL{Path: path, RawQuery: query, ForceQuery: hasQuery && query == ""}
	return u, nil
}

var pathChars = func() (t [256]bool) {
	for _, ch := range "-._~/0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" {
		t[ch] = true
	}
	return t
}()

var (
	crlf  = []byte("\r\n")
	sp    = []byte(" ")
	colon = []byte(":")
)

// methodString returns the method as one of net/http's constants, so
// that it costs no allocation, or "" for one the fast path leaves to
// net/http.
func methodString(b []byte) string {
	switch string(b) {
	case http.MethodGet:
		return http.MethodGet
	case http.MethodPost:
		return http.MethodPost
	case http.MethodPut:
		return http.MethodPut
	case http.MethodDelete:
		return http.MethodDelete
	case http.MethodPatch:
		return http.MethodPatch
	}
	return ""
}

// commonKeys are header names as clients usually send them, already
// canonical, so that the usual headers cost no allocation.
var commonKeys = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{"Host", "Content-Length", "Content-Type", "Accept", "Accept-Encoding", "Authorization",
		"Connection", "User-Agent", "X-Request-Id", "X-Forwarded-For", "Traceparent", "Cookie"} {
		m[k] = k
		m[strings.ToLower(k)] = k
	}
	return m
}()

func canonicalKey(name []byte) string {
	if k, ok := commonKeys[string(name)]; ok {
		return k
	}
	return textproto.CanonicalMIMEHeaderKey(string(name))
}

// isToken reports whether b is a non-empty RFC 9110 token.
func isToken[T string | []byte](b T) bool {
	if len(b) == 0 {
		return false
	}
	for i := 0; i < len(b); i++ {
		if ch := b[i]; int(ch) >= len(tokenChars) || !tokenChars[ch] {
			return false
		}
	}
	return true
}

var tokenChars = func() (t [127]bool) {
	for ch := '0'; ch <= '9'; ch++ {
		t[ch] = true
	}
	for ch := 'a'; ch <= 'z'; ch++ {
		t[ch] = true
		t[ch-'a'+'A'] = true
	}
	for _, ch := range "!#$%&'*+-.^_`|~" {
		t[ch] = true
	}
	return t
}()

// validValue reports whether a header value holds no control characters
// but tab (a bare CR or LF would otherwise split it).
func validValue(b []byte) bool {
	for _, ch := range b {
		if (ch < ' ' && ch != '\t') || ch == 0x7f {
			return false
		}
	}
	return true
}

// body is a request body already in the connection's buffer. It is valid
// until the handler returns, as net/http's is.
type body struct {
	b      []byte
	closed bool
}

func (b *body) Read(p []byte) (int, error) {
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	if len(b.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, b.b)
	b.b = b.b[n:]
	return n, nil
}

func (b *body) Close() error {
	b.closed = true
	return nil
}

// chanListener is the fallback server's listener: it accepts the
// connections the fast path hands over.
type chanListener struct {
	conns chan net.Conn
	done  <-chan struct{}
	addr  net.Addr
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close is a no-op: Server.Shutdown ends Accept.
func (l *chanListener) Close() error   { return nil }
func (l *chanListener) Addr() net.Addr { return l.addr }

// replayConn is a handed-over connection: it reads what the fast path
// already read before reading on.
type replayConn struct {
	net.Conn
	pending []byte
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}
