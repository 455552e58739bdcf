package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMLflowJSClient drives the server with the `mlflow` package from the
// npm registry: a real third-party MLflow client, unchanged.
func TestMLflowJSClient(t *testing.T) {
	dir, _ := filepath.Abs("testdata/mlflow-js")
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(dir, "node_modules", "mlflow"))
	}
	if err != nil {
		msg := "node and `npm ci` in e2e/testdata/mlflow-js are needed for the MLflow JS client test: " + err.Error()
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	s := Start(t)
	cmd := exec.Command(node, "client.js", s.URL)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "all ok") {
		t.Fatalf("mlflow JS client: %v\n%s\nserver log:\n%s", err, out, s.Logs())
	}
	t.Logf("%s", out)
}
