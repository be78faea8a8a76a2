package pipeline

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/osmosis/batchmatch/pipeline/match"
)

// reportProgress reports p until the returned stop is called: a bar redrawn
// on bar (a terminal) every 200 ms, or, when bar is nil, a log line every
// `every`. It also samples the live heap for the manifest's peak.
func reportProgress(ctx context.Context, log *slog.Logger, p *match.Progress, bar io.Writer, every time.Duration, peakHeap *atomic.Uint64) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := every
		if bar != nil {
			tick = min(200*time.Millisecond, every) // a bar redraws often; a shorter interval (tests) wins
		}
		sampler := time.NewTicker(250 * time.Millisecond)
		defer sampler.Stop()
		report := time.NewTicker(tick)
		defer report.Stop()
		draw := func() {
			done, total, rate, eta := p.Snapshot()
			if total == 0 {
				return
			}
			if bar != nil {
				const width = 30
				n := int(width * done / total)
				fmt.Fprintf(bar, "\r\033[Kscoring [%s%s] %d/%d tiles  %.3g pairs/s  ETA %s",
					strings.Repeat("#", n), strings.Repeat(".", width-n), done, total, rate, eta)
				return
			}
			log.Info("scoring progress", "tiles_done", done, "tiles_total", total,
				"pairs_per_s", strconv.FormatFloat(rate, 'g', 3, 64), "eta", eta.String())
		}
		for {
			select {
			case <-ctx.Done():
				draw() // the final state, however short the stage was
				if bar != nil {
					fmt.Fprint(bar, "\r\033[K")
				}
				return
			case <-sampler.C:
				sampleHeap(peakHeap)
			case <-report.C:
				draw()
			}
		}
	}()
	return func() { cancel(); wg.Wait() }
}

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

// ParseBytes reads a size like 4GiB, 512MiB, 3G or 1000000.
func ParseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("not a positive size: %q", s)
	}
	return int64(v * float64(mult)), nil
}
