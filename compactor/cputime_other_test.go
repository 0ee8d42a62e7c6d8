//go:build !unix

package compactor

import "time"

// cpuTime is 0 where it is not measured: the benchmarks leave out the metric.
func cpuTime() time.Duration { return 0 }
