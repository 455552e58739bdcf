package pyfunc

import (
	"os"
	"os/exec"
	"syscall"
)

// sysProcAttr puts the worker in its own process group, so that a Ctrl-C
// meant for the server does not kill it before Slipway drains it, and
// has the kernel kill it if the server dies without closing it.
func sysProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// signalGroup terminates (or kills) the worker and any processes its
// model started.
func signalGroup(p *os.Process, kill bool) {
	sig := syscall.SIGTERM
	if kill {
		sig = syscall.SIGKILL
	}
	if err := syscall.Kill(-p.Pid, sig); err != nil {
		_ = p.Signal(sig)
	}
}
