package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipwayml/slipway/internal/errs"
)

func runCLI(args ...string) (string, error) {
	var out, errOut bytes.Buffer
	root := newRoot(&out, &errOut)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func TestPipelineValidate(t *testing.T) {
	out, err := runCLI("pipeline", "validate", "../../internal/pipelines/spec/testdata/valid/credit.yaml", "-p", "lr=0.05")
	if err != nil || !strings.Contains(out, `pipeline "credit" is valid: 3 steps`) || !strings.Contains(out, "1. prepare") {
		t.Fatalf("validate a good spec: %v\n%s", err, out)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	spec := "name: p\nsteps:\n  a:\n    command: echo ${params.missing}\n    needs: [b]\n  b:\n    comand: x\n"
	if err := os.WriteFile(bad, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = runCLI("pipeline", "validate", bad)
	msg := errs.Message(err)
	if !errs.Is(err, errs.InvalidArgument) || !strings.Contains(msg, "problems:") || !strings.Contains(msg, "bad.yaml:4:") || !strings.Contains(msg, "bad.yaml:7:") {
		t.Fatalf("validate a bad spec: every problem with its line, exit 2; got %v", err)
	}
	if _, err := runCLI("pipeline", "validate", "../../internal/pipelines/spec/testdata/valid/credit.yaml", "-p", "lr=fast"); !errs.Is(err, errs.InvalidArgument) || !strings.Contains(errs.Message(err), "lr") {
		t.Fatalf("a mistyped override: %v", err)
	}
}
