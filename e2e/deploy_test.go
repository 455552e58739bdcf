package e2e

import (
	"strings"
	"testing"
	"time"
)

// A deployment is created from the registry through the CLI, canaried,
// rolled back and shadowed; it follows its alias when a promotion moves
// it, also after a restart; a model no runtime can serve is refused.
func TestDeployCLI(t *testing.T) {
	s := Start(t)
	c := mlflowOn(s, t)
	cli := CLI(t, s)
	registerTumorModel(t, c) // version 1, alias champion
	c.createVersion("tumor", "models:/tumor/1", "")
	c.ok("registered-models/alias", map[string]any{"name": "tumor", "alias": "champion", "version": "2"})

	out, _ := cli(0, "deploy", "create", "tumor", "--model", "models:/tumor/1")
	if !strings.Contains(out, "stable  100%  models:/tumor/1  v1  xgboost") {
		t.Errorf("create:\n%s", out)
	}
	out, _ = cli(0, "deploy", "canary", "tumor", "--model", "models:/tumor@champion", "--percent", "20")
	if !strings.Contains(out, "canary  20%  models:/tumor@champion  v2") {
		t.Errorf("canary:\n%s", out)
	}
	out, _ = cli(0, "deploy", "rollback", "tumor")
	if !strings.Contains(out, "revision 3") || strings.Contains(out, "canary") {
		t.Errorf("rollback:\n%s", out)
	}
	cli(0, "deploy", "shadow", "tumor", "--model", "models:/tumor/2", "--percent", "50")
	out, _ = cli(0, "deploy", "list")
	if !strings.Contains(out, "100% v1, shadow 50% v2") {
		t.Errorf("list:\n%s", out)
	}
	out, _ = cli(0, "deploy", "show", "tumor")
	for _, want := range []string{"create", "canary models:/tumor@champion at 20%", "rollback to revision 1", "shadow models:/tumor/2 at 50%"} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks revision %q:\n%s", want, out)
		}
	}
	audit, _ := cli(0, "audit", "--target", "deployments:/tumor")
	if strings.Count(audit, "deployment.") != 4 {
		t.Errorf("audit of the deployment:\n%s", audit)
	}

	// Following an alias: a promotion moves it, and the deployment rolls.
	cli(0, "deploy", "create", "follow", "--model", "models:/tumor@champion")
	c.ok("registered-models/alias", map[string]any{"name": "tumor", "alias": "champion", "version": "1"})
	waitServing(t, cli, "follow", "v1")
	s.Stop()
	s2 := StartIn(t, s.DataDir)
	cli2 := CLI(t, s2)
	waitServing(t, cli2, "follow", "v1")

	_, errOut := cli2(2, "deploy", "canary", "tumor", "--model", "credit.json", "--percent", "10")
	if !strings.Contains(errOut, "not a registry reference") {
		t.Errorf("a file as a model: %s", errOut)
	}
	_, errOut = cli2(2, "deploy", "create", "tumor", "--model", "models:/tumor/1")
	if !strings.Contains(errOut, "already exists") {
		t.Errorf("create twice: %s", errOut)
	}
}

func waitServing(t *testing.T, cli func(int, ...string) (string, string), name, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, _ := cli(0, "deploy", "list")
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, name+" ") && strings.Contains(line, "100% "+want) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("deployment %s does not serve %s:\n%s", name, want, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
