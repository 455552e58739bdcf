package engine

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"syscall"
	"time"
)

// Task is one attempt of a step, expressed so that any executor can run it:
// a command, its environment and where it reads and writes. A Kubernetes
// executor maps it onto a Job (image + command + env) with the inputs and
// outputs staged through the blob store.
type Task struct {
	Step    string
	Argv    []string // run directly when set
	Shell   string   // otherwise run with sh -c
	Env     map[string]string
	WorkDir string
	Stdout  io.Writer
	Stderr  io.Writer
	Timeout time.Duration // 0 means none
}

// Result is how an attempt ended. A non-zero exit is a Result, not an error:
// errors are for failing to run at all (or being cancelled).
type Result struct {
	ExitCode int // -1 when killed by a signal or never started
	TimedOut bool
	Duration time.Duration
}

// Executor runs tasks. Identity is part of every cache key, so two executors
// that could produce different bytes for the same command must differ in it.
type Executor interface {
	Identity() string
	Run(ctx context.Context, t Task) (Result, error)
}

// Local runs tasks as child processes of this one.
type Local struct {
	// Grace is how long a cancelled or timed-out task's processes get
	// between SIGTERM and SIGKILL; 0 means 5s.
	Grace time.Duration
}

// Identity names the platform: the same command can build different bytes
// on another OS or architecture.
func (l *Local) Identity() string { return "local:" + runtime.GOOS + "/" + runtime.GOARCH }

func (l *Local) grace() time.Duration {
	if l.Grace > 0 {
		return l.Grace
	}
	return 5 * time.Second
}

// Run starts the task in its own process group so that ending it ends every
// process it spawned, not only the shell.
func (l *Local) Run(ctx context.Context, t Task) (Result, error) {
	runCtx := ctx
	if t.Timeout > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, t.Timeout)
		defer cancel()
	}
	var cmd *exec.Cmd
	switch {
	case len(t.Argv) > 0:
		cmd = exec.CommandContext(runCtx, t.Argv[0], t.Argv[1:]...)
	default:
		cmd = exec.CommandContext(runCtx, "/bin/sh", "-c", t.Shell)
	}
	cmd.Dir = t.WorkDir
	cmd.Env = mergeEnv(os.Environ(), t.Env)
	cmd.Stdout, cmd.Stderr = t.Stdout, t.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return signalGroup(cmd.Process.Pid, syscall.SIGTERM) }
	// Bounds both the wait after SIGTERM and the wait for output pipes held
	// open by a background child after the main process exited.
	cmd.WaitDelay = l.grace()

	start := time.Now()
	if err := cmd.Start(); err != nil {
		return Result{ExitCode: -1}, err
	}
	werr := cmd.Wait()
	// Whatever the main process left behind (background children, or ones
	// that ignore SIGTERM) must not outlive the step.
	endGroup(cmd.Process.Pid, l.grace())
	res := Result{ExitCode: cmd.ProcessState.ExitCode(), Duration: time.Since(start)}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	if runCtx.Err() != nil {
		res.TimedOut = true
		return res, nil
	}
	var exitErr *exec.ExitError
	if werr != nil && !errors.As(werr, &exitErr) && !errors.Is(werr, exec.ErrWaitDelay) {
		return res, werr
	}
	return res, nil
}

func signalGroup(pgid int, sig syscall.Signal) error {
	err := syscall.Kill(-pgid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return os.ErrProcessDone
	}
	return err
}

// endGroup asks the group to stop, waits up to grace, then kills it.
func endGroup(pgid int, grace time.Duration) {
	if syscall.Kill(-pgid, 0) != nil {
		return
	}
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if syscall.Kill(-pgid, 0) != nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

func mergeEnv(base []string, extra map[string]string) []string {
	out := make([]string, 0, len(base)+len(extra))
	for _, kv := range base {
		k := kv
		for i := 0; i < len(kv); i++ {
			if kv[i] == '=' {
				k = kv[:i]
				break
			}
		}
		if _, over := extra[k]; !over {
			out = append(out, kv)
		}
	}
	keys := make([]string, 0, len(extra))
	for k := range extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = append(out, k+"="+extra[k])
	}
	return out
}
