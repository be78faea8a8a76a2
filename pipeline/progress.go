package pipeline

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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
				"pairs_per_second", math.Round(rate), "eta_seconds", eta.Seconds())
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
