package synth_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/osmosis/batchmatch/pipeline/synth"
)

// TestGenerateNight: night 0 of an evolving population is plain gen's
// output byte for byte (and gen is reproducible); night 3 is the same
// twice, has every kind of change over its nights, and grows its
// suppression list and blocks.
func TestGenerateNight(t *testing.T) {
	dir := t.TempDir()
	o := synth.Options{N: 3000, Shards: 3, Seed: 5, D: 16, Q: 12, AsOf: "2026-11-24", InvalidRatio: 0.001}
	gen := func(name string, o synth.Options, night bool) []string {
		o.Out = filepath.Join(dir, name)
		if !night {
			paths, err := synth.Generate(context.Background(), o, 2)
			if err != nil {
				t.Fatal(err)
			}
			return paths
		}
		nf, err := synth.GenerateNight(context.Background(), o, 2)
		if err != nil {
			t.Fatal(err)
		}
		return append(nf.Profiles, nf.Suppress, nf.Blocks)
	}
	same := func(a, b []string) bool {
		for k := range a {
			x, err1 := os.ReadFile(a[k])
			y, err2 := os.ReadFile(b[k])
			if err1 != nil || err2 != nil || !bytes.Equal(x, y) {
				return false
			}
		}
		return true
	}
	plain, plain2 := gen("plain", o, false), gen("plain2", o, false)
	n0 := gen("n0", o, true)
	if !same(plain, plain2) {
		t.Fatal("gen is not reproducible")
	}
	if !same(plain, n0[:len(plain)]) {
		t.Fatal("night 0's profiles are not plain gen's")
	}
	o3 := o
	o3.Night, o3.Churn, o3.AsOf = 3, 0.05, "2026-11-27"
	a, b := gen("n3a", o3, true), gen("n3b", o3, true)
	if !same(a, b) {
		t.Fatal("night 3 is not reproducible")
	}
	if same(a[:len(plain)], plain) {
		t.Fatal("night 3 did not change")
	}
	seen := map[synth.EventKind]int{}
	ev := &synth.Evolution{Seed: 5, N0: 3000, Churn: 0.05, Base: func(s int) synth.Member { return synth.Member{ID: synth.Ptr(int64(s))} }}
	for k := 1; k <= 6; k++ {
		n := ev.Night(k)
		for kind, c := range n.Events {
			seen[synth.EventKind(kind)] += c
		}
		if k > 1 && len(n.Suppress) == 0 {
			t.Errorf("night %d: no erasure yet", k)
		}
	}
	for _, kind := range synth.EventKinds() {
		if seen[kind] == 0 {
			t.Errorf("no %s in six nights", kind)
		}
	}
}
