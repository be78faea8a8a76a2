package match

import (
	"sync/atomic"
	"time"
)

// Progress counts the finished scoring tasks and the pairs they examined:
// the workers of TopK update it, a reporter reads it while they run. A nil
// *Progress counts nothing.
type Progress struct {
	total atomic.Int64
	done  atomic.Int64
	pairs atomic.Int64
	begun time.Time
}

// start records that tasks are about to run.
func (p *Progress) start(tasks int) {
	if p != nil {
		p.total.Store(int64(tasks))
		if p.begun.IsZero() {
			p.begun = time.Now()
		}
	}
}

// taskDone records a finished task and the pairs it examined.
func (p *Progress) taskDone(pairs int64) {
	if p != nil {
		p.done.Add(1)
		p.pairs.Add(pairs)
	}
}

// NewProgress returns a Progress whose rates count from now.
func NewProgress() *Progress { return &Progress{begun: time.Now()} }

// Snapshot describes progress so far: tasks done of the total (0 before
// TopK starts), pairs examined per second and an estimate of the time left.
func (p *Progress) Snapshot() (done, total int64, rate float64, eta time.Duration) {
	done, total = p.done.Load(), p.total.Load()
	el := time.Since(p.begun).Seconds()
	if el > 0 {
		rate = float64(p.pairs.Load()) / el
	}
	if done > 0 && total > done {
		eta = time.Duration(float64(time.Since(p.begun)) * float64(total-done) / float64(done)).Round(time.Second)
	}
	return
}
