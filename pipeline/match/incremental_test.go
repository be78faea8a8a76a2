package match

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/osmosis/batchmatch/pipeline/read"
	"github.com/osmosis/batchmatch/pipeline/synth"
)

// loadNight writes night n of ev and reads it at synth.AsOf plus n days.
func loadNight(t *testing.T, ev *synth.Evolution, n int, d, q int) *read.Population {
	t.Helper()
	dir := t.TempDir()
	night := ev.Night(n)
	synth.MustWriteProfiles(t, filepath.Join(dir, "profiles"), night.Members(), d, q, 2, synth.ArrowVariable)
	cfg := baseConfig(dir)
	cfg.AsOf = synth.AsOf.AddDate(0, 0, n)
	if len(night.Suppress) > 0 {
		if err := synth.WriteSuppress(filepath.Join(dir, "suppress.parquet"), night.Suppress); err != nil {
			t.Fatal(err)
		}
		cfg.Suppress = []string{filepath.Join(dir, "suppress.parquet")}
	}
	if len(night.Blocks) > 0 {
		if err := synth.WriteBlocks(filepath.Join(dir, "blocks.parquet"), night.Blocks); err != nil {
			t.Fatal(err)
		}
		cfg.Blocks = []string{filepath.Join(dir, "blocks.parquet")}
	}
	L, err := read.Load(context.Background(), cfg, discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	return L.Pop
}

// prevLists maps the lists of population a (digests da) to population b
// (digests db) as an incremental run does: a member of b is changed when
// it is new or its digest differs; an unchanged member keeps its list,
// each candidate with its index in b when the candidate is unchanged.
func prevLists(a *read.Population, da []read.Digest, lists [][]Cand, b *read.Population, db []read.Digest) ([][]PrevCand, []bool) {
	prev := make([][]PrevCand, b.N)
	changed := make([]bool, b.N)
	unchanged := func(id int64) int32 {
		i, j := a.Index(id), b.Index(id)
		if i < 0 || j < 0 || da[i] != db[j] {
			return -1
		}
		return int32(j)
	}
	for j := range b.N {
		i := a.Index(b.ID[j])
		if i < 0 || da[i] != db[j] {
			changed[j] = true
			continue
		}
		prev[j] = []PrevCand{}
		for _, c := range lists[i] {
			id := a.ID[c.J]
			prev[j] = append(prev[j], PrevCand{ID: id, S: c.S, J: unchanged(id), IDKnown: true})
		}
	}
	return prev, changed
}

// TestIncrementalMatchesTopK: over seven nights of an evolving population
// (every kind of change, birthdays, clones for ties, K small enough that
// lists are full and ties sit at the K boundary), the lists Incremental
// computes from the previous night's are TopK's of the night, exactly; and
// each night some members are carried, some repaired.
func TestIncrementalMatchesTopK(t *testing.T) {
	kn := synth.DefaultKnobs(700)
	kn.Clones = 0.2
	base := synth.Random(71, kn)
	extra := synth.Random(72, kn) // sign-ups
	for i := range extra {
		extra[i].ID = synth.Ptr(int64(100000 + i))
	}
	ev := &synth.Evolution{Seed: 9, N0: len(base), Churn: 0.05, Base: func(s int) synth.Member {
		if s < len(base) {
			return base[s]
		}
		return extra[s-len(base)]
	}}
	for _, k := range []int{1, 3} {
		var pp *read.Population
		var pd []read.Digest
		var pl [][]Cand
		var repaired, carried int64
		for n := range 7 {
			p := loadNight(t, ev, n, kn.D, kn.Q)
			d := p.Digests(nil, 2)
			sc := &Scorer{P: p, W: DefaultWeights}
			b := Block(p)
			whole, _, err := sc.TopK(context.Background(), b, k, 2)
			if err != nil {
				t.Fatal(err)
			}
			if n > 0 {
				prev, changed := prevLists(pp, pd, pl, p, d)
				got, st, err := sc.Incremental(context.Background(), b, prev, changed, k, 2)
				if err != nil {
					t.Fatal(err)
				}
				for i := range p.N {
					if !slices.Equal(got[i], whole[i]) {
						t.Fatalf("k=%d night %d member %d (changed %v): incremental %v, whole %v", k, n, p.ID[i], changed[i], got[i], whole[i])
					}
				}
				repaired += st.Repaired
				carried += st.Carried
				if st.Changed == 0 || st.Carried == 0 {
					t.Errorf("k=%d night %d: %+v", k, n, st)
				}
				whole = got
			}
			pp, pd, pl = p, d, whole
		}
		if repaired == 0 {
			t.Errorf("k=%d: no member needed repairing in 6 nights: the K boundary is not exercised", k)
		}
		fmt.Printf("k=%d repaired %d carried %d\n", k, repaired, carried)
	}
}

// TestCarryOver: for random candidate sets with few score levels (ties
// everywhere, at the K boundary included), some candidates changed or
// gone and new ones arrived, a list CarryOver calls exact is the best k of
// tonight's pairs, and it calls exact every case where the previous list
// was short or lost nothing. Ids are the indices here.
func TestCarryOver(t *testing.T) {
	r := newRand(3)
	exactTies := 0
	for trial := range 20000 {
		k := 1 + r.IntN(5)
		n := r.IntN(12)
		levels := 1 + r.IntN(4)
		score := func() float32 { return float32(r.IntN(levels)) / 4 }
		ids := make([]int64, 40)
		for i := range ids {
			ids[i] = int64(i)
		}
		var before, tonight, fresh []Cand
		var changed []bool
		for j := range n {
			s := score()
			before = append(before, Cand{J: int32(j), S: s})
			switch c := r.IntN(4); c {
			case 0: // changed: a new score, or gone
				changed = append(changed, true)
				if r.IntN(2) == 0 {
					ns := score()
					tonight = append(tonight, Cand{J: int32(j), S: ns})
					fresh = append(fresh, Cand{J: int32(j), S: ns})
				}
			default:
				changed = append(changed, false)
				tonight = append(tonight, Cand{J: int32(j), S: s})
			}
		}
		for j := n; j < n+r.IntN(3); j++ { // new members
			s := score()
			tonight = append(tonight, Cand{J: int32(j), S: s})
			fresh = append(fresh, Cand{J: int32(j), S: s})
		}
		var prev []PrevCand
		dropped := false
		for _, c := range MergeLists(k, before) {
			j := c.J
			if changed[c.J] {
				j, dropped = -1, true
			}
			prev = append(prev, PrevCand{ID: int64(c.J), S: c.S, J: j, IDKnown: true})
		}
		got, exact := CarryOver(k, prev, MergeLists(k, fresh), ids)
		want := MergeLists(k, tonight)
		if exact && !slices.Equal(got, want) {
			t.Fatalf("trial %d k=%d: prev %v fresh %v: carried %v as exact, tonight %v", trial, k, prev, fresh, got, want)
		}
		if !exact && (len(prev) < k || !dropped) {
			t.Fatalf("trial %d k=%d: prev %v lost nothing or was short, yet not exact", trial, k, prev)
		}
		if exact && dropped && len(prev) == k && got[k-1].S == prev[k-1].S {
			exactTies++
		}
	}
	if exactTies == 0 {
		t.Error("no exact carry-over decided on a tie at the K boundary")
	}
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed)) }
