package pipeline

import (
	"runtime/metrics"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

var heapSample = []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}

// sampleHeap raises peak to the current live heap if larger.
func sampleHeap(peak *atomic.Uint64) {
	if peak == nil {
		return
	}
	s := make([]metrics.Sample, 1)
	copy(s, heapSample)
	metrics.Read(s)
	if s[0].Value.Kind() == metrics.KindUint64 {
		v := s[0].Value.Uint64()
		for {
			old := peak.Load()
			if v <= old || peak.CompareAndSwap(old, v) {
				return
			}
		}
	}
}

// peakRSS is the process's peak resident set size in bytes (getrusage).
func peakRSS() int64 {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Maxrss * 1024 // kilobytes on Linux
}
