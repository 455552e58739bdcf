//go:build !unix

package pyfunc

import (
	"os"
	"os/exec"
)

func sysProcAttr(*exec.Cmd) {}

// signalGroup stops the worker; without Unix signals there is no gentler
// way than killing it.
func signalGroup(p *os.Process, _ bool) { _ = p.Kill() }
