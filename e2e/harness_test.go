// Package e2e drives the real slipway binary over HTTP, as a user would:
// build it, start `slipway server` on a random port in a temp dir, call it.
package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary builds cmd/slipway once per test process and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "slipway-e2e-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "slipway")
		cmd := exec.Command("go", "build", "-race", "-o", binPath, "../cmd/slipway")
		if os.Getenv("SLIPWAY_E2E_NO_RACE") != "" {
			cmd = exec.Command("go", "build", "-o", binPath, "../cmd/slipway")
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// Server is a running `slipway server` process.
type Server struct {
	URL     string
	DataDir string
	Args    []string
	t       testing.TB
	cmd     *exec.Cmd
	logs    *syncBuffer
	exited  chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var listenLine = regexp.MustCompile(`addr=(http://[^\s"]+)`)

// Start runs the server with a fresh data dir on a random loopback port.
// Extra args are appended to `slipway server`.
func Start(t testing.TB, args ...string) *Server {
	t.Helper()
	s := &Server{DataDir: t.TempDir(), Args: args, t: t}
	s.start()
	t.Cleanup(s.Stop)
	return s
}

// StartIn runs the server on an existing data dir (to restart after a crash).
func StartIn(t testing.TB, dataDir string, args ...string) *Server {
	t.Helper()
	s := &Server{DataDir: dataDir, Args: args, t: t}
	s.start()
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) start() {
	t := s.t
	t.Helper()
	args := append([]string{"server", "--port", "0", "--data-dir", s.DataDir}, s.Args...)
	s.cmd = exec.Command(Binary(t), args...)
	s.cmd.Env = append(os.Environ(), "SLIPWAY_LOG_LEVEL=info")
	s.logs = &syncBuffer{}
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.exited = make(chan struct{})
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64*1024), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			s.logs.Write([]byte(line + "\n"))
			if m := listenLine.FindStringSubmatch(line); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}()
	go func() {
		s.cmd.Wait()
		close(s.exited)
	}()
	select {
	case s.URL = <-found:
	case <-s.exited:
		t.Fatalf("slipway server exited during start:\n%s", s.logs.String())
	case <-time.After(60 * time.Second):
		s.cmd.Process.Kill()
		t.Fatalf("slipway server did not start in 60s:\n%s", s.logs.String())
	}
}

// Stop sends SIGTERM and waits for a graceful exit.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.exited:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
		s.t.Errorf("slipway server ignored SIGTERM for 30s:\n%s", s.logs.String())
	}
}

// Kill9 ends the server abruptly, as a crash or power cut would end it.
func (s *Server) Kill9() {
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exited
}

// Terminate sends SIGTERM, waits for the process to exit and returns its
// exit code.
func (s *Server) Terminate() int {
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(60 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
		s.t.Errorf("slipway server ignored SIGTERM for 60s")
	}
	return s.cmd.ProcessState.ExitCode()
}

// Logs returns what the server wrote to stderr so far.
func (s *Server) Logs() string { return s.logs.String() }

// Do sends a request with a JSON body (nil for none) and returns the status
// and raw body.
func (s *Server) Do(method, path string, body any, header ...string) (int, []byte) {
	s.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	case string:
		r = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			s.t.Fatal(err)
		}
		r = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, s.URL+path, r)
	if err != nil {
		s.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// JSON sends a request and decodes a JSON object answer.
func (s *Server) JSON(method, path string, body any, header ...string) (int, map[string]any) {
	s.t.Helper()
	status, raw := s.Do(method, path, body, header...)
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			s.t.Fatalf("%s %s: status %d, body is not a JSON object: %q", method, path, status, raw)
		}
	}
	return status, out
}

// OK sends a request, fails the test unless it answers 200, and returns the
// decoded answer.
func (s *Server) OK(method, path string, body any, header ...string) map[string]any {
	s.t.Helper()
	status, out := s.JSON(method, path, body, header...)
	if status != http.StatusOK {
		s.t.Fatalf("%s %s: status %d: %v", method, path, status, out)
	}
	return out
}

// CLI returns a runner of the slipway CLI against s, with its own cache
// folder, that fails the test unless the command exits with wantCode.
func CLI(t testing.TB, s *Server) func(wantCode int, args ...string) (stdout, stderr string) {
	env := []string{"SLIPWAY_URL=" + s.URL, "SLIPWAY_CACHE_DIR=" + t.TempDir()}
	return func(wantCode int, args ...string) (string, string) {
		t.Helper()
		out, errOut, code := Cmd(t, env, args...)
		if code != wantCode {
			t.Fatalf("slipway %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, wantCode, out, errOut)
		}
		return out, errOut
	}
}

// Cmd runs the slipway CLI with env and returns stdout, stderr and the exit code.
func Cmd(t testing.TB, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(Binary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), code
}
