package storagetest

import (
	"os/exec"
	"syscall"
)

// setProcAttr makes the kernel kill MinIO if the test binary dies without
// running its cleanups (a timeout panic, kill -9).
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
