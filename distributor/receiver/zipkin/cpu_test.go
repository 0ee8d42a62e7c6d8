//go:build unix

package zipkin

import "syscall"

// cpuTime is the process's user and system CPU time in ns: benchmarks report
// CPU per span from it, which contention on a shared machine does not inflate
// as it does wall time.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
