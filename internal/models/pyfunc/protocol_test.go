package pyfunc

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// BenchmarkPing measures the protocol alone: one frame to a worker and
// one back, with no model work and no DataFrame.
func BenchmarkPing(b *testing.B) {
	m := openEcho(b)
	defer m.Close(context.Background())
	p := m.procs[0].Load()
	p.mu.Lock()
	defer p.mu.Unlock()
	for b.Loop() {
		if err := p.ping(m.opts.HealthTimeout); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPredictRow measures a one-row request through a model that
// does nothing: the protocol plus building the DataFrame.
func BenchmarkPredictRow(b *testing.B) {
	m := openEcho(b)
	defer m.Close(context.Background())
	row, out := []float32{1, 2, 3, 4}, []float32{0}
	for b.Loop() {
		if err := m.PredictRow(row, out); err != nil {
			b.Fatal(err)
		}
	}
}

func openEcho(b *testing.B) *Model {
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import numpy, pandas").Run(); err != nil {
		b.Skipf("%s cannot import numpy and pandas: %v", py, err)
	}
	dir := b.TempDir()
	for name, text := range map[string]string{
		"code/echo.py": "class M:\n    def predict(self, df):\n        return [0.0] * len(df)\n\ndef _load_pyfunc(path):\n    return M()\n",
		"MLmodel":      "flavors:\n  python_function:\n    loader_module: echo\n    code: code\nsignature:\n  inputs: '[{\"name\": \"a\", \"type\": \"double\"}, {\"name\": \"b\", \"type\": \"double\"}, {\"name\": \"c\", \"type\": \"double\"}, {\"name\": \"d\", \"type\": \"double\"}]'\n",
	} {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	m, err := Open(dir, Options{Python: py, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	return m
}
