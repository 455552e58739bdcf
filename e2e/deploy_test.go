package e2e

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
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

// Predictions over both protocols are what XGBoost predicts for the rows,
// and requests sent while the deployment is canaried, rolled back and its
// alias moved are all answered.
func TestInferenceOverHTTP(t *testing.T) {
	s := Start(t)
	c := mlflowOn(s, t)
	cli := CLI(t, s)
	registerTumorModel(t, c)
	c.createVersion("tumor", "models:/tumor/1", "")
	cli(0, "deploy", "create", "tumor", "--model", "models:/tumor@champion")

	// XGBoost's predictions for these rows (see TestPredict).
	want := []float64{0.5655025839805603, 0.2104165256023407, 0.2104165256023407}
	oip := map[string]any{"id": "r1", "inputs": []map[string]any{{
		"name": "rows", "shape": []int{3, 4}, "datatype": "FP32",
		"data": []float64{17.99, 10.38, 122.8, 1001, 20.57, 17.77, 132.9, 1326, 19.69, 21.25, 130, 1203}}}}
	code, body := s.JSON("POST", "/v2/models/tumor/infer", oip)
	if code != 200 || body["id"] != "r1" || body["model_version"] != "1" {
		t.Fatalf("OIP infer: %d %v", code, body)
	}
	got := body["outputs"].([]any)[0].(map[string]any)["data"].([]any)
	for i, w := range want {
		if d := got[i].(float64) - w; d > 1e-6 || d < -1e-6 {
			t.Errorf("OIP row %d: %v, XGBoost says %v", i, got[i], w)
		}
	}
	split := map[string]any{"dataframe_split": map[string]any{"columns": []string{"radius", "texture", "perimeter", "area"},
		"data": [][]float64{{17.99, 10.38, 122.8, 1001}, {20.57, 17.77, 132.9, 1326}}}}
	code, body = s.JSON("POST", "/deployments/tumor/invocations", split)
	preds, _ := body["predictions"].([]any)
	if code != 200 || len(preds) != 2 || preds[0].(float64)-want[0] > 1e-6 {
		t.Fatalf("invocations: %d %v", code, body)
	}
	code, body = s.JSON("POST", "/v2/models/tumor/infer", map[string]any{"inputs": []map[string]any{{
		"name": "rows", "shape": []int{1, 3}, "datatype": "FP32", "data": []float64{1, 2, 3}}}})
	if code != 400 || !strings.Contains(body["error"].(string), "4 features") {
		t.Errorf("a short row: %d %v", code, body)
	}
	if code, _ := s.Do("POST", "/v2/models/nope/infer", oip); code != 404 {
		t.Errorf("unknown deployment: %d", code)
	}

	// Drive requests while the deployment changes under them.
	stop := make(chan struct{})
	failures := make(chan string, 100)
	done := make(chan int)
	for w := 0; w < 4; w++ {
		go func() {
			n := 0
			for {
				select {
				case <-stop:
					done <- n
					return
				default:
				}
				if code, body := s.Do("POST", "/v2/models/tumor/infer", oip); code != 200 {
					select {
					case failures <- string(body):
					default:
					}
				}
				n++
			}
		}()
	}
	cli(0, "deploy", "canary", "tumor", "--model", "models:/tumor/2", "--percent", "50")
	c.ok("registered-models/alias", map[string]any{"name": "tumor", "alias": "champion", "version": "2"})
	time.Sleep(2500 * time.Millisecond) // a sync moves the stable route to v2
	cli(0, "deploy", "promote", "tumor")
	cli(0, "deploy", "rollback", "tumor")
	close(stop)
	total := 0
	for w := 0; w < 4; w++ {
		total += <-done
	}
	close(failures)
	for f := range failures {
		t.Errorf("a request failed while the deployment changed: %s", f)
	}
	if total < 100 {
		t.Errorf("only %d requests were sent during the changes", total)
	}
}

// slipway serve serves one registered model on its own, fetched from the
// server, over both protocols.
func TestServeStandalone(t *testing.T) {
	s := Start(t)
	c := mlflowOn(s, t)
	registerTumorModel(t, c)
	cmd := exec.Command(Binary(t), "serve", "models:/tumor@champion", "--port", "0")
	cmd.Env = append(os.Environ(), "SLIPWAY_URL="+s.URL)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if i := strings.Index(sc.Text(), " at http://"); i >= 0 {
				found <- sc.Text()[i+4:]
			}
		}
	}()
	var url string
	select {
	case url = <-found:
	case <-time.After(60 * time.Second):
		t.Fatal("slipway serve did not start")
	}
	body := `{"inputs": [[17.99, 10.38, 122.8, 1001]]}`
	resp, err := http.Post(url+"/invocations", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(raw), "0.565502") {
		t.Errorf("invocations: %d %s", resp.StatusCode, raw)
	}
	resp, err = http.Get(url + "/v2/models/tumor")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(raw), `"versions":["1"]`) {
		t.Errorf("model metadata: %d %s", resp.StatusCode, raw)
	}
}

// Every answer is in the prediction log with its inputs and outputs, the
// shadow's answers too (never returned), and labels sent later by request
// id are joined to them.
func TestPredictionLog(t *testing.T) {
	s := Start(t)
	c := mlflowOn(s, t)
	cli := CLI(t, s)
	registerTumorModel(t, c)
	c.createVersion("tumor", "models:/tumor/1", "")
	cli(0, "deploy", "create", "tumor", "--model", "models:/tumor/1")
	cli(0, "deploy", "shadow", "tumor", "--model", "models:/tumor/2", "--percent", "100")
	for i, id := range []string{"a1", "a2", "a3"} {
		code, body := s.JSON("POST", "/v2/models/tumor/infer", map[string]any{"id": id, "inputs": []map[string]any{{
			"name": "rows", "shape": []int{1, 4}, "datatype": "FP32", "data": []float64{17.99 + float64(i), 10.38, 122.8, 1001}}}})
		if code != 200 || body["model_version"] != "1" {
			t.Fatalf("infer %s: %d %v", id, code, body)
		}
	}
	s.OK("POST", "/api/v1/deployments/tumor/feedback", map[string]any{"feedback": []map[string]any{{"request_id": "a2", "label": 1}}})
	code, body := s.JSON("POST", "/api/v1/deployments/tumor/feedback", map[string]any{"feedback": []map[string]any{{"request_id": "", "label": 1}}})
	if code != 400 || !strings.Contains(mustString(body), "feedback[0].request_id") {
		t.Errorf("bad feedback: %d %v", code, body)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := s.OK("GET", "/api/v1/deployments/tumor/predictions", nil)["predictions"].([]any)
		if len(got) == 6 {
			answers, shadows, labelled := 0, 0, 0
			for _, p := range got {
				p := p.(map[string]any)
				if p["shadow"] == true {
					shadows++
					if p["model_version"].(float64) != 2 {
						t.Errorf("shadow answer from version %v", p["model_version"])
					}
				} else {
					answers++
				}
				if p["request_id"] == "a2" && p["label"] != nil {
					labelled++
				}
				if ins := p["inputs"].([]any); len(ins) != 4 {
					t.Errorf("logged inputs: %v", ins)
				}
			}
			if answers != 3 || shadows != 3 || labelled != 2 {
				t.Errorf("log: %d answers, %d shadow answers, %d labelled rows", answers, shadows, labelled)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the prediction log holds %d rows, want 6", len(got))
		}
		time.Sleep(100 * time.Millisecond)
	}
	stats := s.OK("GET", "/api/v1/deployments", nil)["prediction_log"].(map[string]any)
	if stats["logged"].(float64) != 6 || stats["dropped"].(float64) != 0 {
		t.Errorf("log stats: %v", stats)
	}
}

func mustString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
