package kernels

import "testing"

func TestFMALoop(t *testing.T) {
	for _, impl := range fmaLoopImpls {
		t.Run(impl.name, func(t *testing.T) {
			f1, f2 := impl.fn(1000), impl.fn(3000)
			if f1 <= 0 || f2 != 3*f1 || impl.fn(0) != 0 {
				t.Fatalf("flop counts %d, %d, %d: not proportional to the iterations", f1, f2, impl.fn(0))
			}
		})
	}
}

func BenchmarkFMALoop(b *testing.B) {
	for _, impl := range fmaLoopImpls {
		b.Run(impl.name+"/1000", func(b *testing.B) {
			var flops int64
			for b.Loop() {
				flops += impl.fn(1000)
			}
			b.ReportMetric(float64(flops)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
