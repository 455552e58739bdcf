package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/slipwayml/slipway/internal/server"
)

// slipway is a running Slipway server: the built binary in its own
// process, or server.Run in this one (for -cpuprofile).
type slipway struct {
	URL  string
	bin  string
	cmd  *exec.Cmd
	done chan error
	stop context.CancelFunc
	logf *os.File
}

// buildSlipway builds cmd/slipway into dir, as a user's `go build` would.
func buildSlipway(dir string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "slipway")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/slipway")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %v", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("run servebench inside the Slipway module")
	}
	return filepath.Dir(mod), nil
}

var listenLine = regexp.MustCompile(`addr=(http://[^\s"]+)`)

// startSlipway starts `slipway server` on a free loopback port with its
// data in dataDir; its log goes to dataDir/../server.log.
func startSlipway(bin, dataDir string) (*slipway, error) {
	logf, err := os.Create(filepath.Join(filepath.Dir(dataDir), "server.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "server", "--host", "127.0.0.1", "--port", "0", "--data-dir", dataDir)
	cmd.Env = append(os.Environ(), "SLIPWAY_LOG_LEVEL=info")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &slipway{bin: bin, cmd: cmd, done: make(chan error, 1), logf: logf}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			fmt.Fprintln(logf, sc.Text())
			if m := listenLine.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}()
	go func() { s.done <- cmd.Wait() }()
	select {
	case s.URL = <-found:
		return s, nil
	case err := <-s.done:
		return nil, fmt.Errorf("slipway server exited while starting (%v); see %s", err, logf.Name())
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		return nil, fmt.Errorf("slipway server did not start in 60 s; see %s", logf.Name())
	}
}

// startInProcess runs server.Run, the function `slipway server` calls, in
// this process, so that a CPU profile of this process sees the server.
func startInProcess(bin, dataDir string) (*slipway, error) {
	logf, err := os.Create(filepath.Join(filepath.Dir(dataDir), "server.log"))
	if err != nil {
		return nil, err
	}
	cfg := server.Defaults()
	cfg.Host, cfg.Port, cfg.DataDir = "127.0.0.1", 0, dataDir
	log := slog.New(slog.NewTextHandler(logf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	s := &slipway{bin: bin, done: make(chan error, 1), stop: cancel, logf: logf}
	go func() { s.done <- server.Run(ctx, cfg, log, ready) }()
	select {
	case addr := <-ready:
		s.URL = "http://" + addr
		return s, nil
	case err := <-s.done:
		cancel()
		return nil, fmt.Errorf("server.Run: %v", err)
	}
}

// close stops the server gracefully, as SIGTERM does.
func (s *slipway) close() {
	if s.cmd != nil {
		s.cmd.Process.Signal(syscall.SIGTERM)
	} else {
		s.stop()
	}
	select {
	case <-s.done:
	case <-time.After(60 * time.Second):
		if s.cmd != nil {
			s.cmd.Process.Kill()
		}
	}
	s.logf.Close()
}

// pid is the server's process (this one when it runs in process).
func (s *slipway) pid() int {
	if s.cmd != nil {
		return s.cmd.Process.Pid
	}
	return os.Getpid()
}

// call sends a JSON request and decodes the JSON answer into out (if not
// nil); anything but 200 is an error.
func (s *slipway) call(method, path string, body, out any) error {
	var r io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, s.URL+path, r)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return do(req, out)
}

func do(req *http.Request, out any) error {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %d %s", req.Method, req.URL.Path, resp.StatusCode, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: %v: %s", req.Method, req.URL.Path, err, raw)
		}
	}
	return nil
}

// register puts model.json in the registry as MLflow's client does: a run
// in the default experiment, an MLflow model directory (MLmodel with the
// xgboost flavor, and the model file) uploaded through the artifact proxy,
// a registered model and a version whose source is the run's directory.
func (s *slipway) register(name, modelFile string) error {
	var run struct {
		Run struct {
			Info struct {
				RunID       string `json:"run_id"`
				ArtifactURI string `json:"artifact_uri"`
			} `json:"info"`
		} `json:"run"`
	}
	if err := s.call("POST", "/api/2.0/mlflow/runs/create", map[string]any{"experiment_id": "0", "start_time": time.Now().UnixMilli()}, &run); err != nil {
		return err
	}
	root, ok := strings.CutPrefix(run.Run.Info.ArtifactURI, "mlflow-artifacts:/")
	if !ok {
		return fmt.Errorf("run artifact URI %q is not served by the artifact proxy", run.Run.Info.ArtifactURI)
	}
	root = strings.TrimPrefix(root, "/")
	model, err := os.ReadFile(modelFile)
	if err != nil {
		return err
	}
	files := []struct {
		path, ctype string
		body        []byte
	}{
		{"model/MLmodel", "text/plain", []byte("artifact_path: model\nflavors:\n  xgboost:\n    data: model.json\n    model_format: json\n")},
		{"model/model.json", "application/json", model},
	}
	for _, f := range files {
		req, err := http.NewRequest("PUT", s.URL+"/api/2.0/mlflow-artifacts/artifacts/"+root+"/"+f.path, bytes.NewReader(f.body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", f.ctype)
		if err := do(req, nil); err != nil {
			return err
		}
	}
	if err := s.call("POST", "/api/2.0/mlflow/registered-models/create", map[string]any{"name": name}, nil); err != nil {
		return err
	}
	return s.call("POST", "/api/2.0/mlflow/model-versions/create",
		map[string]any{"name": name, "source": "runs:/" + run.Run.Info.RunID + "/model", "run_id": run.Run.Info.RunID}, nil)
}

// deploy runs `slipway deploy create`, as a user would.
func (s *slipway) deploy(name, model string) (string, error) {
	cmd := exec.Command(s.bin, "deploy", "create", name, "--model", model)
	cmd.Env = append(os.Environ(), "SLIPWAY_URL="+s.URL, "SLIPWAY_CACHE_DIR="+filepath.Join(filepath.Dir(s.logf.Name()), "cache"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("slipway deploy create: %v\n%s", err, out)
	}
	return string(out), nil
}

// logStats are the prediction log's counters.
type logStats struct {
	Queued        int   `json:"queued"`
	Logged        int64 `json:"logged"`
	Dropped       int64 `json:"dropped"`
	Failed        int64 `json:"failed"`
	ShadowSkipped int64 `json:"shadow_skipped"`
}

// predictionLog reads the prediction log's counters, waiting (up to a
// minute) until the queue is empty, so that what was answered has been
// written or counted.
func (s *slipway) predictionLog() (logStats, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		var out struct {
			Log *logStats `json:"prediction_log"`
		}
		if err := s.call("GET", "/api/v1/deployments", nil, &out); err != nil {
			return logStats{}, err
		}
		if out.Log == nil {
			return logStats{}, fmt.Errorf("GET /api/v1/deployments reports no prediction_log")
		}
		if out.Log.Queued == 0 || time.Now().After(deadline) {
			return *out.Log, nil
		}
		time.Sleep(200 * time.Millisecond)
	}
}
