package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// wrkResult is what one wrk run printed.
type wrkResult struct {
	Requests   int64
	RPS        float64
	P50, P99   time.Duration
	Non2xx     int64
	SocketErrs string        // "" when wrk reported none
	CPU        time.Duration // wrk's own user + system time
	Output     string
}

// wrkScript makes wrk POST body with a JSON content type. The body goes in
// a level-1 long bracket, which no JSON text can close early.
func wrkScript(dir string, body []byte) (string, error) {
	if strings.Contains(string(body), "]=]") {
		return "", fmt.Errorf("request body holds ]=]")
	}
	path := filepath.Join(dir, "post.lua")
	script := "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.body = [=[" + string(body) + "]=]\n"
	return path, os.WriteFile(path, []byte(script), 0o644)
}

var (
	wrkRPS      = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkTotal    = regexp.MustCompile(`(\d+) requests in`)
	wrkNon2xx   = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	wrkSocket   = regexp.MustCompile(`Socket errors: (.*)`)
	wrkQuantile = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s)\s*$`)
)

// runWrk runs wrk with the latency distribution on and parses it.
func runWrk(script, url string, threads, conns int, d time.Duration) (wrkResult, error) {
	args := []string{"-t" + strconv.Itoa(threads), "-c" + strconv.Itoa(conns), "-d" + strconv.Itoa(int(d.Seconds())) + "s",
		"--latency", "-s", script, url}
	cmd := exec.Command("wrk", args...)
	out, err := cmd.CombinedOutput()
	res := wrkResult{Output: string(out)}
	if err != nil {
		return res, fmt.Errorf("wrk %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	res.CPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	m := wrkRPS.FindSubmatch(out)
	if m == nil {
		return res, fmt.Errorf("wrk printed no Requests/sec:\n%s", out)
	}
	res.RPS, _ = strconv.ParseFloat(string(m[1]), 64)
	if m := wrkTotal.FindSubmatch(out); m != nil {
		res.Requests, _ = strconv.ParseInt(string(m[1]), 10, 64)
	}
	if m := wrkNon2xx.FindSubmatch(out); m != nil {
		res.Non2xx, _ = strconv.ParseInt(string(m[1]), 10, 64)
	}
	if m := wrkSocket.FindSubmatch(out); m != nil {
		res.SocketErrs = strings.TrimSpace(string(m[1]))
	}
	for _, m := range wrkQuantile.FindAllSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(string(m[2]), 64)
		unit := map[string]float64{"us": 1e3, "ms": 1e6, "s": 1e9}[string(m[3])]
		dur := time.Duration(v * unit)
		if string(m[1]) == "50" {
			res.P50 = dur
		} else {
			res.P99 = dur
		}
	}
	return res, nil
}

// wrkVersion is the first line wrk prints about itself.
func wrkVersion() string {
	out, _ := exec.Command("wrk", "-v").CombinedOutput()
	line, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(line)
}
