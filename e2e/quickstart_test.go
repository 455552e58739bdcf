package e2e

import (
	"bufio"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The quickstart runs the lifecycle end to end on a fresh folder: two data
// versions, two pipeline runs, the second reusing the holdout check from
// the cache and promoting a retrained challenger under the policy.
func TestQuickstart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "qs")
	out, errOut, code := Cmd(t, nil, "quickstart", "--no-serve", "--dir", dir, "--port", "0")
	if code != 0 {
		t.Fatalf("quickstart: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"quickstart#1 succeeded", "0 of 8 steps from the cache",
		"= check-holdout  cached", "quickstart#2 succeeded", "1 of 8 steps from the cache",
		"train ran: input data changed", "evaluate ran: input steps.train.outputs.model changed",
		"v1  aliases: -", "v2  aliases: production, staging",
		"-registered-from->  models:/cancer/2", "data:cancer@v2  -consumed-by->",
		"400 requests answered (400 by v1), 0 failed", "running at 10% (step 1 of 3)", "succeeded at 100% (step 3 of 3)",
		"Deployment cancer (revision 4, every change audited): 100% v2",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("quickstart output lacks %q", want)
		}
	}
	if !regexp.MustCompile(`during the rollout: \d+ requests answered \(\d+ by v1, \d+ by v2\), 0 failed`).MatchString(out) {
		t.Errorf("quickstart output lacks the traffic during the rollout")
	}
	if t.Failed() {
		t.Logf("output:\n%s", out)
	}
	// Running it again replaces its own folder; another folder is refused.
	if _, errOut, code := Cmd(t, nil, "quickstart", "--no-serve", "--dir", dir, "--port", "0"); code != 0 {
		t.Fatalf("second quickstart: exit %d: %s", code, errOut)
	}
	other := t.TempDir()
	if err := exec.Command("touch", filepath.Join(other, "mine.txt")).Run(); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := Cmd(t, nil, "quickstart", "--no-serve", "--dir", other); code != 2 || !strings.Contains(errOut, "not empty") {
		t.Errorf("quickstart into a folder it did not make: exit %d: %s", code, errOut)
	}
}

var serverURLLine = regexp.MustCompile(`The server keeps running at (http://\S+) `)

// Without --no-serve the quickstart leaves its server running at the URL
// it prints, until interrupted.
func TestQuickstartServes(t *testing.T) {
	cmd := exec.Command(Binary(t), "quickstart", "--dir", filepath.Join(t.TempDir(), "qs"), "--port", "0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := serverURLLine.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
	}()
	var url string
	select {
	case url = <-found:
	case <-time.After(120 * time.Second):
		t.Fatal("the quickstart did not say where its server runs")
	}
	resp, err := http.Get(url + "/api/2.0/mlflow/experiments/get-by-name?experiment_name=pipelines/quickstart")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("the quickstart's server at %s: %v %v", url, err, resp)
	}
	resp.Body.Close()
	cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("quickstart after Ctrl-C: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the quickstart did not stop on Ctrl-C")
	}
}
