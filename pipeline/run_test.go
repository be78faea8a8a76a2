package pipeline_test

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
	pq "github.com/parquet-go/parquet-go"

	"github.com/osmosis/batchmatch/pipeline"
	"github.com/osmosis/batchmatch/pipeline/failure"
	"github.com/osmosis/batchmatch/pipeline/internal/reference"
	"github.com/osmosis/batchmatch/pipeline/internal/runtest"
	"github.com/osmosis/batchmatch/pipeline/match"
	"github.com/osmosis/batchmatch/pipeline/profile"
	"github.com/osmosis/batchmatch/pipeline/publish"
	"github.com/osmosis/batchmatch/pipeline/synth"
)

// scoreTol is the spec's bound between float32 kernels and a float64 reference.
const scoreTol = 1e-5

type runCase struct {
	name     string
	seed     uint64
	knobs    synth.Knobs
	k        int
	weights  match.Weights
	form     synth.Form
	shards   int
	workers  int
	suppress float64 // fraction of ids suppressed
	blocks   int     // random block pairs (some with unknown ids)
	// check asserts what the scenario is about, so that a scenario that
	// stops exercising its case fails instead of passing vacuously.
	check func(t *testing.T, out runOutput, ref *reference.Result)
}

func (c runCase) withDefaults() runCase {
	if c.k == 0 {
		c.k = 5
	}
	if c.weights == (match.Weights{}) {
		c.weights = match.DefaultWeights
	}
	if c.shards == 0 {
		c.shards = 3
	}
	if c.workers == 0 {
		c.workers = 3
	}
	return c
}

// runOutput is what a run published, read back with arrow-go.
type runOutput struct {
	suppressed []int64
	res        *pipeline.Result
	matches    []publish.MatchRow
	soulmates  []publish.SoulmateRow
	rejects    []publish.RejectRow
}

// runScenario writes the population, runs the pipeline with a checked
// allocator, reads every output back with arrow-go and returns it with the
// reference's view of the same input.
func runScenario(t *testing.T, c runCase) (runOutput, *reference.Result) {
	t.Helper()
	c = c.withDefaults()
	dir := t.TempDir()
	ms := synth.Random(c.seed, c.knobs)
	paths := synth.MustWriteProfiles(t, filepath.Join(dir, "profiles"), ms, c.knobs.D, c.knobs.Q, c.shards, c.form)
	files := map[string][]synth.Member{}
	for s, p := range paths {
		lo, hi := s*len(ms)/c.shards, (s+1)*len(ms)/c.shards
		files[p] = ms[lo:hi]
	}
	r := rand.New(rand.NewPCG(c.seed, 99))
	var suppress []int64
	for _, m := range ms {
		if m.ID != nil && r.Float64() < c.suppress {
			suppress = append(suppress, *m.ID)
		}
	}
	var blocks [][2]int64
	for range c.blocks {
		a, b := ms[r.IntN(len(ms))].ID, ms[r.IntN(len(ms))].ID
		if a != nil && b != nil {
			blocks = append(blocks, [2]int64{*a, *b})
		}
	}
	if c.blocks > 0 {
		blocks = append(blocks, [2]int64{1, 2}) // unknown ids are ignored
	}
	cfg := pipeline.Config{
		Profiles: []string{filepath.Join(dir, "profiles")}, Out: filepath.Join(dir, "out"),
		K: c.k, AsOf: synth.AsOf, Weights: c.weights, Workers: c.workers, MaxRejectRatio: 1,
	}
	if len(suppress) > 0 {
		type sup struct {
			UserID int64 `parquet:"user_id"`
		}
		rows := make([]sup, len(suppress))
		for i, s := range suppress {
			rows[i] = sup{s}
		}
		p := filepath.Join(dir, "suppress.parquet")
		if err := pq.WriteFile(p, rows); err != nil {
			t.Fatal(err)
		}
		cfg.Suppress = []string{p}
	}
	if len(blocks) > 0 {
		type blk struct {
			UserID    int32 `parquet:"user_id"` // a narrower integer type: accepted
			BlockedID int64 `parquet:"blocked_id"`
		}
		rows := make([]blk, 0, len(blocks))
		for _, b := range blocks {
			if b[0] == int64(int32(b[0])) {
				rows = append(rows, blk{int32(b[0]), b[1]})
			}
		}
		p := filepath.Join(dir, "blocks.parquet")
		if err := pq.WriteFile(p, rows); err != nil {
			t.Fatal(err)
		}
		cfg.Blocks = []string{p}
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	env := pipeline.Env{Log: runtest.Discard, Alloc: mem}
	res, err := pipeline.Run(context.Background(), cfg, env)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	mem.AssertSize(t, 0)

	rmem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	out := runOutput{res: res, suppressed: suppress}
	out.matches = runtest.ReadMatches(t, publish.TablePath(res.Published, "matches"), rmem)
	out.soulmates = runtest.ReadSoulmates(t, publish.TablePath(res.Published, "soulmates"), rmem)
	out.rejects = runtest.ReadRejects(t, publish.TablePath(res.Published, "rejects"), rmem)
	rmem.AssertSize(t, 0)

	ref := reference.Load(files, suppress, blocks, c.knobs.D, c.knobs.Q, synth.AsOf, reference.Weights(c.weights))
	return out, ref
}

// checkAgainstReference asserts every spec §4 property of the output
// against the reference.
func checkAgainstReference(t *testing.T, c runCase, out runOutput, ref *reference.Result) {
	t.Helper()
	c = c.withDefaults()
	// Suppressed members appear nowhere, not even in rejects.
	gone := map[int64]bool{}
	for _, id := range out.suppressed {
		gone[id] = true
	}
	for _, m := range out.matches {
		if gone[m.UserID] || gone[m.MatchID] {
			t.Errorf("suppressed member in matches: %+v", m)
		}
	}
	for _, s := range out.soulmates {
		if gone[s.UserA] || gone[s.UserB] {
			t.Errorf("suppressed member in soulmates: %+v", s)
		}
	}
	for _, r := range out.rejects {
		if r.UserID != nil && gone[*r.UserID] {
			t.Errorf("suppressed member in rejects: %+v", r)
		}
	}
	if c.check != nil {
		c.check(t, out, ref)
	}
	// rejects: exactly the reference's rows and reasons, sorted by file and row.
	gotRej := map[reference.Key]profile.Reason{}
	for i, r := range out.rejects {
		gotRej[reference.Key{File: r.SourceFile, Row: r.Row}] = profile.Reason(r.Reason)
		if i > 0 {
			p := out.rejects[i-1]
			if cmp.Or(cmp.Compare(p.SourceFile, r.SourceFile), cmp.Compare(p.Row, r.Row)) >= 0 {
				t.Errorf("rejects not sorted by file, row at %d", i)
			}
		}
	}
	for k, want := range ref.Rejects {
		if got, ok := gotRej[k]; !ok || got != want {
			t.Errorf("reject %s row %d: got %q, want %q", filepath.Base(k.File), k.Row, got, want)
		}
	}
	for k, got := range gotRej {
		if _, ok := ref.Rejects[k]; !ok {
			t.Errorf("unexpected reject %s row %d: %q", filepath.Base(k.File), k.Row, got)
		}
	}
	if n := out.res.Manifest.Counts.Eligible; n != int64(len(ref.IDs)) {
		t.Errorf("eligible: got %d, want %d", n, len(ref.IDs))
	}

	// matches, grouped by member
	byUser := map[int64][]publish.MatchRow{}
	for i, m := range out.matches {
		if i > 0 {
			p := out.matches[i-1]
			if cmp.Or(cmp.Compare(p.UserID, m.UserID), cmp.Compare(p.Rank, m.Rank)) >= 0 {
				t.Fatalf("matches not sorted by user_id, rank at row %d", i)
			}
		}
		byUser[m.UserID] = append(byUser[m.UserID], m)
	}
	for u := range byUser {
		if ref.Eligible[u] == nil {
			t.Errorf("ineligible member %d has matches", u)
		}
	}
	var compatible int64
	for _, a := range ref.IDs {
		// the reference's compatible candidates of a, best first by reference score
		type cand struct {
			id int64
			s  reference.Score
		}
		var cands []cand
		for _, b := range ref.IDs {
			if s := ref.Score(a, b); s.OK {
				cands = append(cands, cand{b, s})
			}
		}
		compatible += int64(len(cands))
		slices.SortFunc(cands, func(x, y cand) int { return cmp.Or(cmp.Compare(y.s.S, x.s.S), cmp.Compare(x.id, y.id)) })
		got := byUser[a]
		if want := min(c.k, len(cands)); len(got) != want {
			t.Errorf("member %d: %d matches, want %d", a, len(got), want)
			continue
		}
		chosen := map[int64]bool{}
		minChosen := math.Inf(1)
		for i, m := range got {
			if m.Rank != int32(i+1) {
				t.Errorf("member %d: rank %d at position %d", a, m.Rank, i)
			}
			if i > 0 && cmp.Or(cmp.Compare(got[i-1].Score, m.Score)*-1, cmp.Compare(got[i-1].MatchID, m.MatchID)) >= 0 {
				t.Errorf("member %d: ranks %d and %d out of order (score, then lower match_id)", a, i, i+1)
			}
			s := ref.Score(a, m.MatchID)
			if !s.OK {
				t.Errorf("member %d: match %d is not compatible", a, m.MatchID)
				continue
			}
			chosen[m.MatchID] = true
			minChosen = math.Min(minChosen, s.S)
			for _, comp := range []struct {
				name string
				got  float32
				want float64
				tol  float64
			}{{"score", m.Score, s.S, scoreTol}, {"s_trait", m.STrait, s.ST, scoreTol}, {"s_questions", m.SQuestions, s.SQ, scoreTol},
				{"s_proximity", m.SProximity, s.SD, scoreTol}, {"distance_km", m.DistanceKm, s.DKm, 1e-3 + 1e-6*s.DKm}} {
				if d := math.Abs(float64(comp.got) - comp.want); !(d <= comp.tol) {
					t.Errorf("member %d match %d: %s = %v, reference %v (|Δ| %.3g)", a, m.MatchID, comp.name, comp.got, comp.want, d)
				}
			}
			if (m.SBiomarker != nil) != s.HasH {
				t.Errorf("member %d match %d: s_biomarker null = %v, reference has biomarker = %v", a, m.MatchID, m.SBiomarker == nil, s.HasH)
			} else if s.HasH && math.Abs(float64(*m.SBiomarker)-s.SH) > scoreTol {
				t.Errorf("member %d match %d: s_biomarker %v, reference %v", a, m.MatchID, *m.SBiomarker, s.SH)
			}
		}
		if len(got) == 0 {
			continue
		}
		// Selection: nothing left out scores clearly above what was kept, and
		// an exact reference tie with the last kept goes to the lower id.
		last := got[len(got)-1]
		for _, cd := range cands {
			if chosen[cd.id] {
				continue
			}
			if cd.s.S > minChosen+2*scoreTol {
				t.Errorf("member %d: left out %d (reference %v) above a kept match (reference %v)", a, cd.id, cd.s.S, minChosen)
			}
			if cd.s.S == ref.Score(a, last.MatchID).S && cd.id < last.MatchID {
				t.Errorf("member %d: tie between %d and kept %d not broken by lower match_id", a, cd.id, last.MatchID)
			}
		}
	}
	if got := out.res.Manifest.Counts.PairsCompatible; got != compatible {
		t.Errorf("pairs_compatible: got %d, reference %d", got, compatible)
	}

	// mutual, from the output alone
	inList := map[[2]int64]bool{}
	for _, m := range out.matches {
		inList[[2]int64{m.UserID, m.MatchID}] = true
	}
	for _, m := range out.matches {
		if want := inList[[2]int64{m.MatchID, m.UserID}]; m.Mutual != want {
			t.Errorf("match %d→%d: mutual %v, want %v", m.UserID, m.MatchID, m.Mutual, want)
		}
	}
	// soulmates: exactly the greedy rule re-derived from the matches table
	rows := make([]reference.Match, len(out.matches))
	for i, m := range out.matches {
		rows[i] = reference.Match{UserID: m.UserID, MatchID: m.MatchID, Rank: m.Rank, Score: m.Score}
	}
	var want []publish.SoulmateRow
	for _, s := range reference.Soulmates(rows) {
		want = append(want, publish.SoulmateRow{UserA: s.UserA, UserB: s.UserB, Score: s.Score, RankA: s.RankA, RankB: s.RankB})
	}
	if !slices.Equal(out.soulmates, want) {
		t.Errorf("soulmates differ from the greedy rule on the matches table:\n got %v\nwant %v", out.soulmates, want)
	}
	checkStable(t, out.matches, out.soulmates)
}

// checkStable asserts spec §4's consequence: no edge of the top-K graph
// whose two ends both prefer each other to their assigned soulmates.
func checkStable(t *testing.T, matches []publish.MatchRow, souls []publish.SoulmateRow) {
	t.Helper()
	partner := map[int64]float32{}
	for _, s := range souls {
		if s.UserA >= s.UserB {
			t.Errorf("soulmate pair %d, %d not ordered", s.UserA, s.UserB)
		}
		for _, u := range []int64{s.UserA, s.UserB} {
			if _, dup := partner[u]; dup {
				t.Errorf("member %d has two soulmates", u)
			}
			partner[u] = s.Score
		}
	}
	get := func(u int64) float32 {
		if s, ok := partner[u]; ok {
			return s
		}
		return float32(math.Inf(-1))
	}
	for _, m := range matches {
		if m.Score > get(m.UserID) && m.Score > get(m.MatchID) {
			t.Errorf("unstable: %d and %d prefer each other (%v) to their soulmates", m.UserID, m.MatchID, m.Score)
		}
	}
}

func TestRunMatchesReference(t *testing.T) {
	base := synth.DefaultKnobs(120)
	everyone := base
	everyone.AllSeekAll, everyone.WideAges, everyone.MaxKm, everyone.Dealbreak, everyone.ConsentP = true, true, [2]float32{20000, 20000}, 0, 1
	nobody := base
	nobody.Centers = [][2]float64{{48.85, 2.35}, {-33.9, 151.2}}
	nobody.MaxKm, nobody.Spread = [2]float32{0.001, 0.002}, 5
	ties := everyone
	ties.Clones = 0.5
	deal := base
	deal.Dealbreak, deal.AllSeekAll, deal.WideAges = 0.4, true, true
	noHealth := base
	noHealth.HealthP = 0
	invalid := base
	invalid.Invalid, invalid.Dups = 0.25, 0.05
	world := base
	world.Centers = [][2]float64{{89.9, 0}, {-89.9, 100}, {0, 179.95}, {0, -179.95}, {51.5, 0}}
	world.Spread, world.MaxKm, world.AllSeekAll, world.WideAges = 0.3, [2]float32{1, 3000}, true, true
	tiny := everyone
	tiny.N = 1
	empty := base
	empty.N = 0
	qless := base
	qless.Q, qless.Answered = 0, 0
	ancient := everyone
	ancient.AgeSpan, ancient.WideAges = [2]int{245, 265}, false // ages past the uint8 range of age_min/age_max

	wide := everyone
	wide.N, wide.D, wide.TraitCluster, wide.TraitNoise, wide.TraitFlat = 48, 4096, 2, -1, true // flat traits: long sums that err one way
	wider := wide
	wider.N, wider.D = 24, 10000
	edges := everyone
	edges.FloatEdges, edges.Clones = 0.4, 0.3
	nulls := base
	nulls.Nulls, nulls.Invalid = 0.3, 0.05

	counts := func(out runOutput) publish.Counts { return out.res.Manifest.Counts }
	all := func(ref *reference.Result) int64 { e := int64(len(ref.IDs)); return e * (e - 1) }
	cases := []runCase{
		{name: "empty", knobs: empty, check: func(t *testing.T, out runOutput, _ *reference.Result) {
			if c := counts(out); c.RowsRead != 0 || len(out.matches)+len(out.soulmates)+len(out.rejects) != 0 {
				t.Errorf("empty population produced output: %+v", c)
			}
		}},
		{name: "one member", knobs: tiny, check: func(t *testing.T, out runOutput, ref *reference.Result) {
			if len(ref.IDs) != 1 || len(out.matches) != 0 || counts(out).MembersWithoutMatch != 1 {
				t.Errorf("one member: eligible %d, matches %d", len(ref.IDs), len(out.matches))
			}
		}},
		{name: "nobody compatible", knobs: nobody, check: func(t *testing.T, out runOutput, ref *reference.Result) {
			if len(ref.IDs) < 50 || counts(out).PairsCompatible != 0 || len(out.matches) != 0 || len(out.soulmates) != 0 {
				t.Errorf("nobody compatible: eligible %d, compatible %d", len(ref.IDs), counts(out).PairsCompatible)
			}
		}},
		{name: "everyone compatible", knobs: everyone, k: 7, check: func(t *testing.T, out runOutput, ref *reference.Result) {
			if counts(out).PairsCompatible != all(ref) || len(out.soulmates) < len(ref.IDs)*4/10 {
				t.Errorf("everyone compatible: %d of %d pairs, %d soulmates", counts(out).PairsCompatible, all(ref), len(out.soulmates))
			}
		}},
		{name: "ties", knobs: ties, k: 4, check: func(t *testing.T, out runOutput, _ *reference.Result) {
			ties := 0
			for i := 1; i < len(out.matches); i++ {
				if out.matches[i].UserID == out.matches[i-1].UserID && out.matches[i].Score == out.matches[i-1].Score {
					ties++
				}
			}
			if ties < 10 {
				t.Errorf("ties scenario has only %d tied neighbours", ties)
			}
		}},
		{name: "k above compatible count", knobs: everyone, k: 500, check: func(t *testing.T, out runOutput, ref *reference.Result) {
			if int64(len(out.matches)) != all(ref) {
				t.Errorf("k=500: %d matches, want every compatible pair (%d)", len(out.matches), all(ref))
			}
		}},
		{name: "dealbreakers", knobs: deal, check: func(t *testing.T, out runOutput, ref *reference.Result) {
			if c := counts(out).PairsCompatible; c == 0 || c >= all(ref)/2 {
				t.Errorf("dealbreakers: %d of %d pairs compatible, want some but well under half", c, all(ref))
			}
		}},
		{name: "blocked pairs", knobs: everyone, blocks: 400, check: func(t *testing.T, out runOutput, ref *reference.Result) {
			if c := counts(out).PairsCompatible; c >= all(ref) || c < all(ref)-800 || counts(out).BlockPairs < 300 {
				t.Errorf("blocks: %d of %d pairs compatible with %d block pairs", c, all(ref), counts(out).BlockPairs)
			}
		}},
		{name: "suppressed members", knobs: invalid, suppress: 0.2, check: func(t *testing.T, out runOutput, _ *reference.Result) {
			if counts(out).RowsSuppressed < 10 {
				t.Errorf("only %d rows suppressed", counts(out).RowsSuppressed)
			}
		}},
		{name: "no health consent", knobs: noHealth, check: func(t *testing.T, out runOutput, _ *reference.Result) {
			for _, m := range out.matches {
				if m.SBiomarker != nil {
					t.Fatalf("s_biomarker set without health consent: %+v", m)
				}
			}
		}},
		{name: "invalid rows", knobs: invalid, check: func(t *testing.T, out runOutput, _ *reference.Result) {
			if n := len(counts(out).QuarantinedByReason); n < 8 {
				t.Errorf("only %d reject reasons exercised", n)
			}
		}},
		{name: "poles and antimeridian", knobs: world, check: func(t *testing.T, out runOutput, _ *reference.Result) {
			far := 0
			for _, m := range out.matches {
				if m.DistanceKm > 50 {
					far++
				}
			}
			if far == 0 {
				t.Error("no match across a pole or the antimeridian")
			}
		}},
		{name: "no questions", knobs: qless},
		{name: "ages above 255", knobs: ancient, check: func(t *testing.T, out runOutput, ref *reference.Result) {
			old, paired := 0, 0
			for _, id := range ref.IDs {
				if ref.Eligible[id].Age > 255 {
					old++
				}
			}
			for _, m := range out.matches {
				if ref.Eligible[m.UserID].Age <= 255 {
					paired++
				}
			}
			if old < 10 || paired == 0 {
				t.Errorf("scenario too thin: %d members over 255, %d matches", old, paired)
			}
		}},
		{name: "trait weight only", knobs: everyone, weights: match.Weights{Trait: 1}},
		{name: "traits of width 4096", knobs: wide, k: 6, check: func(t *testing.T, out runOutput, ref *reference.Result) {
			if out.res.Manifest.Dims.D != 4096 || len(out.matches) < 6*len(ref.IDs)*9/10 {
				t.Errorf("D = %d, %d matches for %d members", out.res.Manifest.Dims.D, len(out.matches), len(ref.IDs))
			}
		}},
		{name: "traits of width 10000", knobs: wider, k: 4, check: func(t *testing.T, out runOutput, ref *reference.Result) {
			if out.res.Manifest.Dims.D != 10000 || len(out.matches) < 4*len(ref.IDs)*9/10 {
				t.Errorf("D = %d, %d matches for %d members", out.res.Manifest.Dims.D, len(out.matches), len(ref.IDs))
			}
		}},
		{name: "float edges", knobs: edges, check: func(t *testing.T, out runOutput, ref *reference.Result) {
			tinyKm, hugeKm, tinyTrait, hugeTrait := 0, 0, 0, 0
			for _, m := range out.matches {
				e := ref.Eligible[m.UserID].M
				switch {
				case *e.MaxKm == math.SmallestNonzeroFloat32:
					tinyKm++
				case *e.MaxKm == math.MaxFloat32:
					hugeKm++
				}
				switch a := math.Abs(float64(e.Trait[0])); {
				case a != 0 && a < 1e-36:
					tinyTrait++
				case a > 1e36:
					hugeTrait++
				}
			}
			if tinyKm == 0 || hugeKm == 0 || tinyTrait == 0 || hugeTrait == 0 {
				t.Errorf("float edges not matched: max_km tiny %d, huge %d; traits tiny %d, huge %d", tinyKm, hugeKm, tinyTrait, hugeTrait)
			}
		}},
		{name: "nulls everywhere", knobs: nulls, check: func(t *testing.T, out runOutput, _ *reference.Result) {
			nullReasons := 0
			for r := range counts(out).QuarantinedByReason {
				if strings.HasPrefix(r, "null_") {
					nullReasons++
				}
			}
			if nullReasons < 8 {
				t.Errorf("only %d null_ reasons exercised: %v", nullReasons, counts(out).QuarantinedByReason)
			}
		}},
		{name: "biomarker and proximity", knobs: base, weights: match.Weights{Biomarker: 1, Proximity: 1}},
		{name: "one worker one shard", knobs: base, workers: 1, shards: 1},
	}
	for seed := uint64(1); seed <= 6; seed++ {
		k := synth.DefaultKnobs(60 + int(seed)*40)
		k.Invalid, k.Dups, k.Clones = 0.05, 0.02, 0.05
		cases = append(cases, runCase{name: fmt.Sprintf("random/%d", seed), seed: seed, knobs: k, k: int(seed), suppress: 0.05, blocks: 50})
	}
	for _, c := range cases {
		for _, form := range []synth.Form{synth.ArrowFixed, synth.ArrowVariable, synth.ParquetGo, synth.ParquetGoFixed} {
			c := c
			c.form = form
			ms := synth.Random(c.seed, c.knobs)
			if !form.CanHold(ms, c.knobs.D, c.knobs.Q) {
				continue
			}
			t.Run(c.name+"/"+form.String(), func(t *testing.T) {
				t.Parallel()
				out, ref := runScenario(t, c)
				checkAgainstReference(t, c, out, ref)
			})
		}
	}
}

func TestBadFiles(t *testing.T) {
	good := func(t *testing.T, dir string) string {
		ms := synth.Random(1, synth.DefaultKnobs(20))
		return synth.MustWriteProfiles(t, filepath.Join(dir, "profiles"), ms, 16, 12, 1, synth.ArrowFixed)[0]
	}
	cases := []struct {
		name    string
		make    func(t *testing.T, dir string)
		kind    error
		mention []string // the message must name these
	}{
		{"zero-byte file", func(t *testing.T, dir string) {
			os.MkdirAll(filepath.Join(dir, "profiles"), 0o755)
			os.WriteFile(filepath.Join(dir, "profiles", "empty.parquet"), nil, 0o644)
		}, failure.BadData, []string{"empty.parquet"}},
		{"not parquet", func(t *testing.T, dir string) {
			os.MkdirAll(filepath.Join(dir, "profiles"), 0o755)
			os.WriteFile(filepath.Join(dir, "profiles", "notes.parquet"), []byte("user_id,gender\n1,0\n"), 0o644)
		}, failure.BadData, []string{"notes.parquet", "Parquet"}},
		{"truncated file", func(t *testing.T, dir string) {
			p := good(t, dir)
			b, _ := os.ReadFile(p)
			os.WriteFile(p, b[:len(b)/2], 0o644)
		}, failure.BadData, []string{"shard-a.parquet"}},
		{"corrupted page", func(t *testing.T, dir string) {
			p := good(t, dir)
			b, _ := os.ReadFile(p)
			for i := 200; i < len(b)/2; i += 7 { // scribble over data pages, keep the footer
				b[i] ^= 0x5a
			}
			os.WriteFile(p, b, 0o644)
		}, failure.BadData, []string{"shard-a.parquet"}},
		{"missing column", func(t *testing.T, dir string) {
			type row struct {
				UserID int64 `parquet:"user_id"`
			}
			os.MkdirAll(filepath.Join(dir, "profiles"), 0o755)
			pq.WriteFile(filepath.Join(dir, "profiles", "ids.parquet"), []row{{1}})
		}, failure.BadData, []string{"ids.parquet", `"consent"`, "missing"}},
		{"wrong column type", func(t *testing.T, dir string) {
			type row struct {
				UserID     int64     `parquet:"user_id"`
				Consent    bool      `parquet:"consent"`
				Gender     string    `parquet:"gender"` // wrong: a string
				Seeking    int64     `parquet:"seeking"`
				BirthDate  int32     `parquet:"birth_date,date"`
				AgeMin     int64     `parquet:"age_min"`
				AgeMax     int64     `parquet:"age_max"`
				Lat        float64   `parquet:"lat"`
				Lon        float64   `parquet:"lon"`
				MaxKm      float32   `parquet:"max_km"`
				Trait      []float32 `parquet:"trait,list"`
				HLA        []byte    `parquet:"hla"`
				Answers    []byte    `parquet:"answers"`
				Accept     []byte    `parquet:"accept"`
				Importance []byte    `parquet:"importance"`
			}
			os.MkdirAll(filepath.Join(dir, "profiles"), 0o755)
			if err := pq.WriteFile(filepath.Join(dir, "profiles", "typed.parquet"), []row{{Gender: "woman"}},
				pq.SchemaOf(row{})); err != nil {
				t.Fatal(err)
			}
		}, failure.BadData, []string{"typed.parquet", `"gender"`, "want an integer"}},
		{"shards disagree on D", func(t *testing.T, dir string) {
			ms := synth.Random(1, synth.DefaultKnobs(10))
			synth.MustWriteArrow(t, filepath.Join(dir, "profiles", "a.parquet"), ms, 16, 12, false)
			k := synth.DefaultKnobs(10)
			k.D = 8
			synth.MustWriteArrow(t, filepath.Join(dir, "profiles", "b.parquet"), synth.Random(2, k), 8, 12, false)
		}, failure.BadData, []string{"b.parquet", `"trait"`, "fixed width 8"}},
		{"no such input", func(t *testing.T, dir string) {}, failure.NoInput, []string{"profiles"}},
		{"empty directory", func(t *testing.T, dir string) {
			os.MkdirAll(filepath.Join(dir, "profiles"), 0o755)
		}, failure.NoInput, []string{"no .parquet file"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			os.MkdirAll(filepath.Join(dir, "profiles"), 0o755)
			if c.name == "no such input" {
				os.Remove(filepath.Join(dir, "profiles"))
			}
			c.make(t, dir)
			cfg := runtest.BaseConfig(dir)
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			env := pipeline.Env{Log: runtest.Discard, Alloc: mem}
			_, err := pipeline.Run(context.Background(), cfg, env)
			if !errors.Is(err, c.kind) {
				t.Fatalf("got %v, want %v", err, c.kind)
			}
			for _, m := range c.mention {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
			runtest.AssertNothingPublished(t, cfg.Out)
			mem.AssertSize(t, 0)
		})
	}
}

func TestRejectRatio(t *testing.T) {
	dir := t.TempDir()
	k := synth.DefaultKnobs(200)
	k.Invalid = 0.1
	synth.MustWriteProfiles(t, filepath.Join(dir, "profiles"), synth.Random(3, k), 16, 12, 2, synth.ArrowVariable)
	cfg := runtest.BaseConfig(dir)
	cfg.MaxRejectRatio = 0.01
	_, err := pipeline.Run(context.Background(), cfg, runtest.Quiet)
	if !errors.Is(err, failure.BadData) || !strings.Contains(err.Error(), "--max-reject-ratio") {
		t.Fatalf("got %v, want a reject-ratio failure.BadData", err)
	}
	runtest.AssertNothingPublished(t, cfg.Out)
	cfg.MaxRejectRatio = 0.5
	if _, err := pipeline.Run(context.Background(), cfg, runtest.Quiet); err != nil {
		t.Fatalf("with a higher ratio: %v", err)
	}
}

// TestDeterministic runs the same population sharded and scheduled
// differently: the match and soulmate tables must be byte-identical.
func TestDeterministic(t *testing.T) {
	k := synth.DefaultKnobs(300)
	k.Invalid, k.Clones = 0.02, 0.1
	ms := synth.Random(5, k)
	var first map[string][]byte
	for _, v := range []struct{ shards, workers int }{{1, 1}, {4, 2}, {7, 8}} {
		dir := t.TempDir()
		synth.MustWriteProfiles(t, filepath.Join(dir, "profiles"), ms, 16, 12, v.shards, synth.ArrowVariable)
		cfg := runtest.BaseConfig(dir)
		cfg.Workers = v.workers
		res, err := pipeline.Run(context.Background(), cfg, runtest.Quiet)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string][]byte{}
		for _, tb := range []string{"matches", "soulmates"} {
			got[tb], _ = os.ReadFile(publish.TablePath(res.Published, tb))
		}
		if first == nil {
			first = got
			continue
		}
		for tb, b := range got {
			if !bytes.Equal(b, first[tb]) {
				t.Errorf("%s differs with %d shards and %d workers", tb, v.shards, v.workers)
			}
		}
	}
}

func TestCancelledRunPublishesNothing(t *testing.T) {
	dir := t.TempDir()
	synth.MustWriteProfiles(t, filepath.Join(dir, "profiles"), synth.Random(7, synth.DefaultKnobs(100)), 16, 12, 2, synth.ArrowFixed)
	cfg := runtest.BaseConfig(dir)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := pipeline.Run(ctx, cfg, runtest.Quiet); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	runtest.AssertNothingPublished(t, cfg.Out)
}

// TestManifestFingerprint: the manifest names every input with its size and
// checksum, and the configuration hash changes exactly when output can.
func TestManifestFingerprint(t *testing.T) {
	dir := t.TempDir()
	paths := synth.MustWriteProfiles(t, filepath.Join(dir, "profiles"), synth.Random(10, synth.DefaultKnobs(40)), 16, 12, 2, synth.ArrowFixed)
	cfg := runtest.BaseConfig(dir)
	res, err := pipeline.Run(context.Background(), cfg, runtest.Quiet)
	if err != nil {
		t.Fatal(err)
	}
	m := res.Manifest
	if len(m.Inputs.Profiles) != 2 || m.Version != publish.Version || m.AsOf != "2026-11-24" {
		t.Fatalf("manifest %+v", m)
	}
	for i, in := range m.Inputs.Profiles {
		b, _ := os.ReadFile(paths[i])
		sum := sha256.Sum256(b)
		if in.Path != paths[i] || in.Size != int64(len(b)) || in.SHA256 != hex.EncodeToString(sum[:]) {
			t.Errorf("input %d: %+v", i, in)
		}
	}
	same := m.Config // as recorded; workers, overwrite and paths do not change the tables
	same.Workers, same.Overwrite, same.Out = 7, true, "elsewhere"
	other := m.Config
	other.K = 4
	if publish.ConfigHash(same, m.Dims, "") != m.ConfigHash || publish.ConfigHash(other, m.Dims, "") == m.ConfigHash || publish.ConfigHash(m.Config, m.Dims, "k1") == m.ConfigHash {
		t.Error("config hash does not track exactly the output-relevant configuration")
	}
	// the manifest on disk is the one returned, and holds no member data
	raw, _ := os.ReadFile(filepath.Join(res.Published, "manifest.json"))
	for _, banned := range []string{`"trait"`, `"lat"`, `"hla"`, `"answers"`, `"gender"`} {
		if strings.Contains(string(raw), banned) {
			t.Errorf("manifest mentions %s", banned)
		}
	}
}
