//go:build unix

package pyfunc_test

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slipwayml/slipway/internal/models/pyfunc"
)

// TestHealth kills one idle worker and freezes another: the first is
// noticed when it exits, the second when it misses a health check, and
// both are replaced.
func TestHealth(t *testing.T) {
	m := openLoader(t, pyfunc.Options{Workers: 2, HealthInterval: 50 * time.Millisecond, HealthTimeout: 200 * time.Millisecond, MinBackoff: 10 * time.Millisecond})
	before := m.Stats()
	if len(before.PIDs) != 2 {
		t.Fatalf("stats %+v", before)
	}
	if err := syscall.Kill(before.PIDs[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(before.PIDs[1], syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := m.Stats()
		if s.Restarts == 2 && s.Ready == 2 {
			for _, pid := range s.PIDs {
				if pid == before.PIDs[0] || pid == before.PIDs[1] {
					t.Fatalf("stats %+v: an old worker is still counted", s)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("workers not replaced: %+v", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if s := m.Stats(); !strings.Contains(s.LastError, "exited (signal: killed)") && !strings.Contains(s.LastError, "health check") {
		t.Fatalf("last error %q", s.LastError)
	}
	predictOK(t, m, 1, 2)
}
