package http1

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// echo answers with what it saw of the request, and says which server
// served it: net/http puts its *http.Server in the request's context.
func echo(w http.ResponseWriter, r *http.Request) {
	served := "http1"
	if r.Context().Value(http.ServerContextKey) != nil {
		served = "net/http"
	}
	w.Header().Set("X-Served-By", served)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "reading the body: "+err.Error(), http.StatusBadRequest)
		return
	}
	switch r.URL.Path {
	case "/panic":
		panic("the handler failed")
	case "/nocontent":
		w.WriteHeader(http.StatusNoContent)
		w.Write([]byte("dropped"))
		return
	case "/sniff":
		w.Write([]byte("<html><body>hi</body></html>"))
		return
	case "/inject":
		w.Header().Set("X-Value", "a\r\nSet-Cookie: evil=1")
	case "/late":
		w.WriteHeader(http.StatusAccepted)
		w.Header().Set("X-Late", "ignored")
	case "/close":
		w.Header().Set("Connection", "close")
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Add("X-Multi", "1")
	w.Header().Add("X-Multi", "2")
	fmt.Fprintf(w, "%s %s %q host=%s len=%d body=%q ua=%q ids=%q", r.Method, r.URL.Path, r.URL.RawQuery, r.Host,
		r.ContentLength, body, r.UserAgent(), r.Header.Values("X-Id"))
}

// start serves h on loopback, through http1 (fast says which requests
// it takes) or, with fast nil, through net/http alone.
func start(t *testing.T, h http.Handler, fast func(method, path string) bool) (addr string, s *Server) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	fallback := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(quiet.Handler(), slog.LevelError)}
	done := make(chan error, 1)
	if fast == nil {
		go func() { done <- fallback.Serve(ln) }()
		t.Cleanup(func() {
			fallback.Close()
			<-done
		})
		return ln.Addr().String(), nil
	}
	s = &Server{Handler: h, Fast: fast, Fallback: fallback, IdleTimeout: 5 * time.Second, ReadHeaderTimeout: 5 * time.Second, Log: quiet}
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve returned %v", err)
		}
	})
	return ln.Addr().String(), s
}

func allFast(method, path string) bool { return !strings.HasPrefix(path, "/slow") }

// exchange writes raw on a new connection and reads answers until the
// server closes the connection or wait passes with no more bytes.
func exchange(t *testing.T, addr, raw string) (answers []answer, closed bool) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	for {
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			var ne net.Error
			return answers, !(errors.As(err, &ne) && ne.Timeout())
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		served := res.Header.Get("X-Served-By")
		if served == "" {
			served = "net/http" // its own error answers
		}
		answers = append(answers, answer{describe(res, body), served})
	}
}

type answer struct{ text, served string }

// describe is what must match between the two servers: status, the
// headers a client acts on, and the body.
func describe(res *http.Response, body []byte) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n", res.Status)
	for _, k := range []string{"Content-Type", "Content-Length", "X-Multi", "X-Value", "X-Late", "Set-Cookie", "Connection"} {
		if k == "Content-Length" && len(body) > 2048 {
			continue // net/http streams an answer beyond its 2 KiB buffer chunked; http1 sends its length
		}
		if vs := res.Header.Values(k); len(vs) > 0 {
			fmt.Fprintf(&b, "%s: %q\n", k, vs)
		}
	}
	if res.Header.Get("Date") == "" {
		b.WriteString("no Date header\n")
	}
	if len(body) > 300 { // long enough to tell answers apart, short enough to read
		fmt.Fprintf(&b, "%s... (%d bytes, %x)", body[:300], len(body), sha256.Sum256(body))
	} else {
		fmt.Fprintf(&b, "%s", body)
	}
	return b.String()
}

// Every request gets the answer net/http gives, whether the fast path
// serves it or hands it over; the fast path takes what it should.
func TestAnswersAsNetHTTPDoes(t *testing.T) {
	h := http.HandlerFunc(echo)
	fastAddr, _ := start(t, h, allFast)
	stdAddr, _ := start(t, h, nil)
	post := func(path, headers, body string) string {
		return fmt.Sprintf("POST %s HTTP/1.1\r\nHost: example\r\n%sContent-Length: %d\r\n\r\n%s", path, headers, len(body), body)
	}
	big := strings.Repeat("x", 200<<10)
	var manyHeaders string
	for i := range 100 {
		manyHeaders += fmt.Sprintf("X-Id: %d\r\nX-H%d: v\r\n", i, i)
	}
	cases := []struct {
		name, raw string
		fast      []bool // which answers the fast path serves
		closed    bool   // the server closes the connection afterwards
	}{
		{"post", post("/infer?a=1", "User-Agent: t\r\nX-Id: 1\r\nx-id: 2\r\n", `{"x":1}`), []bool{true}, false},
		{"get without a body", "GET /v2/health?x HTTP/1.1\r\nHost: h\r\n\r\n", []bool{true}, false},
		{"lower-case and odd header names", "POST /a HTTP/1.1\r\nhost: h\r\ncontent-length: 2\r\nX-WEIRD-name: v\r\n\r\nok", []bool{true}, false},
		{"keep-alive, pipelined", post("/a", "", "1") + post("/b", "", "22") + "GET /c HTTP/1.1\r\nHost: h\r\n\r\n", []bool{true, true, true}, false},
		{"nothing of a request carries over to the next", post("/a?q=1", "User-Agent: t\r\nX-Id: 1\r\nX-Id: 2\r\n", "1") + post("/b", "X-Id: 3\r\n", "") + post("/c", "", "3"), []bool{true, true, true}, false},
		{"a hundred headers, then a few", post("/a", manyHeaders, "1") + post("/b", "X-Id: 3\r\n", "2"), []bool{true, true}, false},
		{"fast, handed over, then net/http keeps the connection", post("/a", "", "1") + post("/slow", "", "2") + post("/c", "", "3"), []bool{true, false, false}, false},
		{"Connection: close", post("/a", "Connection: keep-alive, Close\r\n", "1") + post("/b", "", "2"), []bool{true}, true},
		{"the handler asks to close", post("/close", "", "1") + post("/b", "", "2"), []bool{true}, true},
		{"chunked body", "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", []bool{false}, false},
		{"Expect: 100-continue", "POST /a HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok", []bool{false, false}, false},
		{"HTTP/1.0", "GET /a HTTP/1.0\r\nHost: h\r\n\r\n", []bool{false}, true},
		{"no Host", "GET /a HTTP/1.1\r\n\r\n", []bool{false}, true},
		{"two Hosts", "GET /a HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", []bool{false}, true},
		{"header line without a colon", "GET /a HTTP/1.1\r\nHost: h\r\nbroken\r\n\r\n", []bool{false}, true},
		{"space before the colon", "GET /a HTTP/1.1\r\nHost : h\r\n\r\n", []bool{false}, true},
		{"folded header", "GET /a HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n 2\r\n\r\n", []bool{false}, false},
		{"two Content-Lengths", "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", []bool{false}, true},
		{"bad Content-Length", "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", []bool{false}, true},
		{"unknown method", "BREW /a HTTP/1.1\r\nHost: h\r\n\r\n", []bool{false}, false},
		{"absolute target", "GET http://h/a HTTP/1.1\r\nHost: h\r\n\r\n", []bool{false}, false},
		{"header too large", "GET /a HTTP/1.1\r\nHost: h\r\nX-Big: " + strings.Repeat("b", 20<<10) + "\r\n\r\n", []bool{false}, false},
		{"body over the fast path's limit", post("/a", "", strings.Repeat("y", maxBodyBytes+1)), []bool{false}, false},
		{"large body on the fast path, then a small one", post("/a", "", big) + post("/b", "", "2"), []bool{true, true}, false},
		{"escaped path", post("/a%2Fb/%7Ec", "", ""), []bool{true}, false},
		{"204 drops the body", post("/nocontent", "", ""), []bool{true}, false},
		{"content type sniffed", post("/sniff", "", ""), []bool{true}, false},
		{"CR LF in a header value", post("/inject", "", ""), []bool{true}, false},
		{"headers changed after WriteHeader", post("/late", "", ""), []bool{true}, false},
		{"panic closes without an answer", post("/panic", "", "") + post("/a", "", ""), nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, gotClosed := exchange(t, fastAddr, tc.raw)
			want, wantClosed := exchange(t, stdAddr, tc.raw)
			if len(got) != len(want) || len(got) != len(tc.fast) {
				t.Fatalf("%d answers, net/http gives %d, want %d:\n%q\n%q", len(got), len(want), len(tc.fast), got, want)
			}
			for i := range got {
				if got[i].text != want[i].text {
					t.Errorf("answer %d:\n%s\nnet/http answers:\n%s", i, got[i].text, want[i].text)
				}
				if fast := got[i].served == "http1"; fast != tc.fast[i] {
					t.Errorf("answer %d served by %s, want the fast path: %v", i, got[i].served, tc.fast[i])
				}
			}
			if gotClosed != tc.closed || wantClosed != tc.closed {
				t.Errorf("closed: %v, net/http: %v, want %v", gotClosed, wantClosed, tc.closed)
			}
		})
	}
}

// Shutdown lets a request in flight finish and be answered, closes idle
// connections, refuses new ones, and shuts the fallback down too.
func TestShutdownFinishesRequestsInFlight(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/wait" {
			entered <- struct{}{}
			<-release
		}
		w.Write([]byte("done " + r.URL.Path))
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Handler: h, Fast: allFast, Fallback: &http.Server{Handler: h}}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	addr := ln.Addr().String()

	idle, err := net.Dial("tcp", addr) // answered once, then idle
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	io.WriteString(idle, "GET /a HTTP/1.1\r\nHost: h\r\n\r\n")
	idleReader := bufio.NewReader(idle)
	res, err := http.ReadResponse(idleReader, nil)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("first answer: %v %v", res, err)
	}
	io.ReadAll(res.Body)
	busy, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	io.WriteString(busy, "POST /wait HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n")
	<-entered

	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	idle.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := idleReader.ReadByte(); err != io.EOF {
		t.Errorf("the idle connection: read %v, want it closed (EOF)", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve returned %v", err)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Error("a new connection was accepted after Shutdown")
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) with a request in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	res, err = http.ReadResponse(bufio.NewReader(busy), nil)
	if err != nil {
		t.Fatalf("the request in flight was not answered: %v", err)
	}
	body, _ := io.ReadAll(res.Body)
	if string(body) != "done /wait" || !res.Close {
		t.Errorf("answer in flight: %q, close %v; want its body and Connection: close", body, res.Close)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

// A request the fast path takes is parsed as net/http parses it; one it
// cannot take exactly is left to net/http.
func FuzzParseHead(f *testing.F) {
	for _, seed := range []string{
		"POST /v2/models/m/infer HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n",
		"GET /a?b=c HTTP/1.1\r\nhost: x\r\nX-A: 1\r\nx-a: 2\r\nConnection: close\r\n\r\n",
		"GET /a%20b HTTP/1.1\r\nHost: h\r\nContent-Length: 01\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: h\r\nX: \t v \t\r\n\r\n",
		"GET //a/../b HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: h\r\nContent-Length: +1\r\n\r\n",
		"GET /a?b=%zz&c HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /a? HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /a#b HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /a!b'(c)*;d=e HTTP/1.1\r\nHost: h\r\n\r\n",
	} {
		f.Add(seed)
	}
	// One connection parses every input, as one would parse a client's
	// requests in turn: nothing of one request may show in the next.
	c := &conn{s: &Server{Fast: func(string, string) bool { return true }}, remote: "r"}
	c.setContext(context.Background())
	f.Fuzz(func(t *testing.T, head string) {
		if i := strings.Index(head, "\r\n\r\n"); i >= 0 {
			head = head[:i+4]
		} else {
			head += "\r\n\r\n"
		}
		got, length, ok := c.parseHead([]byte(head))
		if !ok {
			return
		}
		want, err := http.ReadRequest(bufio.NewReader(strings.NewReader(head)))
		if err != nil {
			t.Fatalf("the fast path took a request net/http refuses (%v):\n%q", err, head)
		}
		if got.Method != want.Method || got.RequestURI != want.RequestURI || *got.URL != *want.URL ||
			got.Host != want.Host || got.ContentLength != want.ContentLength || int64(length) != max(want.ContentLength, 0) ||
			got.Close != want.Close || fmt.Sprint(got.Header) != fmt.Sprint(want.Header) {
			t.Fatalf("%q parsed as\n%s %s %s %d %v %v\nnet/http:\n%s %s %s %d %v %v", head,
				got.Method, got.URL, got.Host, got.ContentLength, got.Close, got.Header,
				want.Method, want.URL, want.Host, want.ContentLength, want.Close, want.Header)
		}
	})
}

// A connection that sends nothing is closed after IdleTimeout, and one
// that starts a request and stalls after ReadHeaderTimeout.
func TestTimeouts(t *testing.T) {
	h := http.HandlerFunc(echo)
	serve := func(idle, header time.Duration) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s := &Server{Handler: h, Fast: allFast, Fallback: &http.Server{Handler: h}, IdleTimeout: idle, ReadHeaderTimeout: header}
		go s.Serve(ln)
		t.Cleanup(func() { s.Shutdown(context.Background()) })
		return ln.Addr().String()
	}
	closedWithin := func(addr, send string, answers int) {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, send)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		br := bufio.NewReader(c)
		for range answers {
			res, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("%q: %v", send, err)
			}
			io.ReadAll(res.Body)
		}
		if _, err := br.ReadByte(); err != io.EOF {
			t.Errorf("%q: read %v, want the server to close the connection", send, err)
		}
	}
	idle := serve(100*time.Millisecond, time.Minute)
	closedWithin(idle, "", 0)
	closedWithin(idle, "GET /a HTTP/1.1\r\nHost: h\r\n\r\n", 1)
	stalled := serve(time.Minute, 100*time.Millisecond)
	closedWithin(stalled, "POST /a HTTP/1.1\r\nHost: h\r\n", 0)
	closedWithin(stalled, "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nab", 0)
	closedWithin(stalled, "GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\n", 1)
}

// Clients on many keep-alive connections, some of which are handed over
// mid-way, each get their own answers.
func TestConcurrentClients(t *testing.T) {
	addr, _ := start(t, http.HandlerFunc(echo), allFast)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	defer client.CloseIdleConnections()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				path := "/infer"
				if g%4 == 0 && i%50 == 49 {
					path = "/slow" // hands this connection to net/http
				}
				body := fmt.Sprintf("client %d request %d", g, i)
				res, err := client.Post("http://"+addr+path, "text/plain", strings.NewReader(body))
				if err != nil {
					t.Error(err)
					return
				}
				got, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if want := fmt.Sprintf("body=%q", body); res.StatusCode != 200 || !strings.Contains(string(got), want) {
					t.Errorf("answer %d %q, want it to hold %s", res.StatusCode, got, want)
					return
				}
			}
		}()
	}
	wg.Wait()
}
