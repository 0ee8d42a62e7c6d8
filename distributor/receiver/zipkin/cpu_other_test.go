//go:build !unix

package zipkin

func cpuTime() int64 { return 0 }
