// Command bench is batchmatch's benchmark harness (`make bench`): it
// measures this machine's FMA peak, the scoring kernels against it, whole
// runs of the real binary on generated workloads, and the embedding-only
// workload through FAISS IndexFlatIP when FAISS is installed
// (`make bench-peers`), and prints every figure with the ratio that
// matters. Each figure is the median of --reps repetitions made in this
// one process, so ratios compare measurements taken side by side.
//
//	go run ./bench --bin bin/batchmatch [--reps 3] [--n-embed 50000] ...
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/spf13/pflag"
	"golang.org/x/sys/cpu"

	"github.com/osmosis/batchmatch/kernels"
	"github.com/osmosis/batchmatch/pipeline/match"
	"github.com/osmosis/batchmatch/pipeline/publish"
	"github.com/osmosis/batchmatch/pipeline/read"
	"github.com/osmosis/batchmatch/pipeline/synth"
)

// options are the harness's flags.
type options struct {
	Bin    string
	Work   string
	Reps   int
	NEmbed int
	NFull  int
	NReal  []int
	Python string
	BLAS   string
	Core   []string
	Peers  bool
	NDuck  int
	Duck   string
}

func (o *options) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Bin, "bin", "bin/batchmatch", "batchmatch binary to time")
	fs.StringVar(&o.Work, "work", filepath.Join(os.TempDir(), "batchmatch-bench"), "directory for generated workloads (reused between runs)")
	fs.IntVar(&o.Reps, "reps", 3, "repetitions of every measurement (the median is reported)")
	fs.IntVar(&o.NEmbed, "n-embed", 50000, "members in the embedding-only workload (the FAISS comparison); 0 skips it")
	fs.IntVar(&o.NFull, "n-full", 20000, "members in the full-scoring workload (every pair compatible); 0 skips it")
	fs.IntSliceVar(&o.NReal, "n-real", []int{100000}, "member counts of the realistic workloads (generator defaults), e.g. 100000,300000,1000000; 0 skips them")
	fs.StringVar(&o.Python, "python", "/usr/bin/python3", "Python with Debian's python3-faiss")
	fs.StringVar(&o.BLAS, "blas-dir", "/usr/lib/x86_64-linux-gnu/openblas-openmp", "BLAS library folder FAISS runs with (LD_LIBRARY_PATH)")
	fs.StringSliceVar(&o.Core, "openblas-coretype", nil, "OPENBLAS_CORETYPE values FAISS is tried with before the comparison, the fastest kept (default: SkylakeX and Haswell on an AVX-512 machine, Haswell otherwise, and OpenBLAS's own choice)")
	fs.BoolVar(&o.Peers, "peers", true, "run the peers (FAISS, DuckDB) when they are installed")
	fs.IntVar(&o.NDuck, "n-duck", 50000, "members of the realistic population, written by DuckDB, that batchmatch and the DuckDB SQL implementation of the spec both score; 0 skips it")
	fs.StringVar(&o.Duck, "duckdb-dir", "testdata/duckdb", "the Node project with @duckdb/node-api installed (make duckdb), holding spec_peer.mjs")
}

const (
	asOf = "2026-11-24"
	dim  = 128
	topK = 10
)

func main() {
	var o options
	fs := pflag.NewFlagSet("bench", pflag.ExitOnError)
	o.addFlags(fs)
	_ = fs.Parse(os.Args[1:])
	if err := run(context.Background(), o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// peakShape says which FMA loop measured the peak.
func peakShape() string {
	switch kernels.Implementation() {
	case "avx512":
		return "16 chains of 16-lane ZMM FMA"
	case "avx2+fma":
		return "12 chains of 8-lane YMM FMA"
	}
	return "generic Go, 8 scalar chains"
}

// cpuHasAVX512 reports whether this CPU (and OS) runs AVX-512F code.
func cpuHasAVX512() bool { return cpu.X86.HasAVX512F }

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func run(ctx context.Context, o options, w io.Writer) error {
	if o.Reps < 1 {
		return errors.New("--reps must be at least 1")
	}
	if _, err := os.Stat(o.Bin); err != nil {
		return fmt.Errorf("batchmatch binary: %w (run `make build` first)", err)
	}
	P := runtime.GOMAXPROCS(0)
	fmt.Fprintf(w, "machine: %s, %d threads, kernels %s, %s\n", cpuModel(), P, kernels.Implementation(), runtime.Version())
	fmt.Fprintf(w, "medians of %d repetitions\n\n", o.Reps)

	// 1. the machine's own peak, and the kernels against it
	// The machine is shared: peak and kernel are measured back to back in
	// each repetition and the fraction is the median of those ratios.
	fma := func() int64 { return kernels.FMALoop(1 << 22) }
	kreps := max(o.Reps, 5)
	var peaks, peaks1, dots, fracs []float64
	for range kreps {
		pk, d := parallelRate(P, fma), parallelRate(P, dotTileWork())
		peaks, dots, fracs = append(peaks, pk), append(dots, d), append(fracs, d/pk)
		peaks1 = append(peaks1, parallelRate(1, fma))
	}
	peak, dotRate := median(peaks), median(dots)
	fmt.Fprintf(w, "kernels: %s\n", kernels.Implementation())
	fmt.Fprintf(w, "FMA peak (FMALoop, %s):   %7.1f GFLOP/s on %d threads, %.1f on 1 (medians of %d)\n", peakShape(), peak/1e9, P, median(peaks1)/1e9, kreps)
	fmt.Fprintf(w, "trait micro-kernel (DotTile 64×64×%d):        %7.1f GFLOP/s = %.0f %% of peak (per-repetition ratios %s), %.0f M pairs/s   (target ≥ 80 %%)\n",
		dim, dotRate/1e9, 100*median(fracs), percents(fracs), dotRate/(2*dim)/1e6)
	filt := measure(o.Reps, func() float64 { return parallelRate(P, filterWork()) })
	fmt.Fprintf(w, "hard filters (FilterTile, 64 candidates):      %7.0f M pairs/s\n", filt/1e6)
	qrate := measure(o.Reps, func() float64 { return parallelRate(P, questionsWork()) })
	fmt.Fprintf(w, "questions both ways (QuestionsRows, Q = 64):   %7.0f M pairs/s\n\n", qrate/1e6)

	// 2. whole runs of the binary
	if o.NEmbed > 0 {
		embed, err := workload(ctx, o, "embed", synth.Options{N: o.NEmbed, D: dim, Q: 0, Open: true})
		if err != nil {
			return err
		}
		n := float64(o.NEmbed)
		pairs := n * (n - 1)
		fmt.Fprintf(w, "embedding-only, N = %d, D = %d, K = %d, trait weight only (every pair compatible):\n", o.NEmbed, dim, topK)
		printBM := func(bm runStats) {
			fmt.Fprintf(w, "  batchmatch whole run (read Parquet, score, select, write Parquet): %.2f s, %.0f M pairs/s; scoring stage %.2f s\n",
				bm.wall, pairs/bm.wall/1e6, bm.score)
			fmt.Fprintf(w, "  trait work: %.1f GFLOP/s over the whole run (N²·2D, what a GEMM does; batchmatch computes each unordered pair once: %.1f GFLOP/s executed)\n",
				n*n*2*dim/bm.wall/1e9, pairs/2*2*dim/bm.wall/1e9)
		}
		if o.Peers && exec.CommandContext(ctx, o.Python, "-c", "import faiss").Run() == nil {
			// batchmatch and FAISS runs interleaved (faissCompare)
			if err := faissCompare(ctx, o, w, embed, printBM); err != nil {
				return err
			}
		} else {
			bm, err := timeRuns(ctx, o, embed, "1,0,0,0")
			if err != nil {
				return err
			}
			printBM(bm)
			if o.Peers {
				fmt.Fprintln(w, "  FAISS: not installed (`make bench-peers` installs python3-faiss, python3-numpy and libopenblas0-openmp)")
			}
		}
		fmt.Fprintln(w)
	}
	if o.NFull > 0 {
		full, err := workload(ctx, o, "full", synth.Options{N: o.NFull, D: dim, Q: 64, Open: true})
		if err != nil {
			return err
		}
		r, err := timeRuns(ctx, o, full, "")
		if err != nil {
			return err
		}
		nf := float64(o.NFull)
		fmt.Fprintf(w, "full spec scoring, N = %d, D = %d, Q = 64, default weights, every pair compatible:\n", o.NFull, dim)
		fmt.Fprintf(w, "  whole run %.2f s; scoring stage %.2f s = %.0f M candidate pairs/s   (target ≥ 100 M)\n\n",
			r.wall, r.score, nf*(nf-1)/r.score/1e6)
	}
	if o.NDuck > 0 && o.Peers {
		if _, err := os.Stat(filepath.Join(o.Duck, "node_modules", "@duckdb", "node-api")); err != nil {
			fmt.Fprintf(w, "DuckDB SQL peer: not installed (`make duckdb`)\n\n")
		} else if err := duckCompare(ctx, o, w); err != nil {
			return err
		}
	}
	o.NReal = slices.DeleteFunc(o.NReal, func(n int) bool { return n <= 0 })
	if len(o.NReal) > 0 {
		fmt.Fprintf(w, "realistic populations (generator defaults, D = %d, Q = 64, K = %d, default weights); runs above 100 000 members are timed once:\n", dim, topK)
		fmt.Fprintf(w, "  %9s  %8s  %8s  %9s  %14s  %14s  %14s  %6s\n", "members", "run (s)", "score (s)", "RSS (MiB)", "pairs examined", "geo+orient.", "compatible", "ex/geo")
		for _, n := range o.NReal {
			real, err := workload(ctx, o, "real", synth.Options{N: n, D: dim, Q: 64})
			if err != nil {
				return err
			}
			oo := o
			if n > 100000 {
				oo.Reps = 1
			}
			r, err := timeRuns(ctx, oo, real, "")
			if err != nil {
				return err
			}
			geo, err := geoOrientationPairs(ctx, real)
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "  %9d  %8.1f  %8.1f  %9d  %14d  %14d  %14d  %6.2f\n",
				n, r.wall, r.score, r.rss>>20, r.examined, geo, r.compatible, float64(r.examined)/float64(geo))
		}
	}
	return nil
}

func percents(xs []float64) string {
	var parts []string
	for _, x := range xs {
		parts = append(parts, fmt.Sprintf("%.0f", 100*x))
	}
	return strings.Join(parts, "/")
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

// measure returns the median of reps calls of f.
func measure(reps int, f func() float64) float64 {
	xs := make([]float64, reps)
	for i := range xs {
		xs[i] = f()
	}
	return median(xs)
}

// parallelRate runs work on p goroutines for about 300 ms and returns the
// units of work done per second, all goroutines together.
func parallelRate(p int, work func() int64) float64 {
	var wg sync.WaitGroup
	total := make([]int64, p)
	start := time.Now()
	deadline := start.Add(300 * time.Millisecond)
	for g := range p {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				total[g] += work()
			}
		}()
	}
	wg.Wait()
	var sum int64
	for _, t := range total {
		sum += t
	}
	return float64(sum) / time.Since(start).Seconds()
}

func randPanel(seed uint64, n int) []float32 {
	v := make([]float32, n)
	x := seed
	for i := range v {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		v[i] = float32(int32(x>>32)) / (1 << 31)
	}
	return v
}

// dotTileWork returns a closure doing 20 tiles of DotTile 64×64×dim on its
// own panels (per goroutine); it reports flops.
func dotTileWork() func() int64 {
	var mu sync.Mutex
	seed := uint64(1)
	return func() int64 {
		mu.Lock()
		seed++
		s := seed
		mu.Unlock()
		q, c, out := randPanel(s, dim*64), randPanel(s+1000, dim*64), make([]float32, 64*64)
		const tiles = 200
		for range tiles {
			kernels.DotTile(out, 64, q, c, 64, 64, dim)
		}
		return tiles * 64 * 64 * 2 * dim
	}
}

// filterWork returns a closure filtering 64 queries against a tile; it
// reports pairs.
func filterWork() func() int64 {
	var c kernels.FilterCands
	for j := range kernels.TileWidth {
		c.Age[j], c.AgeMin[j], c.AgeMax[j] = int32(20+j%40), 18, 99
		a := float64(j) * 1e-3
		c.X[j], c.Y[j], c.Z[j], c.CosT[j] = math.Cos(a), math.Sin(a), 0, math.Cos(0.01)
	}
	return func() int64 {
		var acc uint64
		for r := range 1000 {
			q := kernels.FilterQuery{Age: int32(20 + r%50), AgeMin: 18, AgeMax: 99, X: 1, CosT: math.Cos(0.02)}
			k, s := kernels.FilterTile(&q, &c, 1e-11)
			acc += k ^ s
		}
		if acc == 1 {
			fmt.Print("")
		}
		return 1000 * kernels.TileWidth
	}
}

// questionsWork returns a closure comparing one member's questionnaire with
// 64 candidates, 100 times; it reports pairs.
func questionsWork() func() int64 {
	const Q = 64
	S := kernels.QMaskWords * kernels.QWords(Q)
	rows := make([]uint64, 64*S)
	x := uint64(7)
	for i := range 64 {
		ans, acc, imp := make([]byte, Q), make([]byte, Q), make([]byte, Q)
		for q := range Q {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			ans[q], acc[q], imp[q] = byte(x%9), byte(x>>8), byte((x>>16)%5)
		}
		kernels.PackQuestions(rows[i*S:(i+1)*S], ans, acc, imp)
	}
	idx := make([]int32, 64)
	for k := range idx {
		idx[k] = int32(k)
	}
	return func() int64 {
		out := make([]kernels.QStats, 64)
		for r := range 100 {
			kernels.QuestionsRows(out, rows[(r%64)*S:(r%64+1)*S], rows, idx, 1)
		}
		return 100 * 64
	}
}

// workload generates a population once into the work directory (reused
// while its parameters match) and returns its profile directory.
func workload(ctx context.Context, o options, name string, g synth.Options) (string, error) {
	g.Shards, g.Seed, g.AsOf = 4, 42, asOf
	dir := filepath.Join(o.Work, fmt.Sprintf("%s-n%d-d%d-q%d-open%v", name, g.N, g.D, g.Q, g.Open))
	g.Out = filepath.Join(dir, "profiles")
	stamp := filepath.Join(dir, "done")
	if _, err := os.Stat(stamp); err == nil {
		return g.Out, nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	if _, err := synth.Generate(ctx, g, runtime.GOMAXPROCS(0)); err != nil {
		return "", fmt.Errorf("generating %s: %w", name, err)
	}
	return g.Out, os.WriteFile(stamp, nil, 0o644)
}

// runStats are the medians of timed runs of the binary.
type runStats struct {
	wall, score          float64 // seconds
	rss                  int64
	examined, compatible int64
	out                  string // partition of the last run
}

// timeRuns runs `batchmatch run` on profiles o.Reps times (a fresh output
// each time) and returns median wall time, median scoring stage, and the
// manifest's counts.
func timeRuns(ctx context.Context, o options, profiles, weights string) (runStats, error) {
	var walls, scores []float64
	var last runStats
	for rep := range o.Reps {
		out := filepath.Join(filepath.Dir(profiles), fmt.Sprintf("out%d", rep))
		if err := os.RemoveAll(out); err != nil {
			return last, err
		}
		args := []string{"run", "--profiles", profiles, "--out", out, "--as-of", asOf, "--k", fmt.Sprint(topK), "--log-format", "json", "--log-level", "warn"}
		if weights != "" {
			args = append(args, "--weights", weights)
		}
		cmd := exec.CommandContext(ctx, o.Bin, args...)
		cmd.Stderr = os.Stderr
		start := time.Now()
		if err := cmd.Run(); err != nil {
			return last, fmt.Errorf("%s %s: %w", o.Bin, strings.Join(args, " "), err)
		}
		walls = append(walls, time.Since(start).Seconds())
		part := filepath.Join(out, "dt="+asOf)
		b, err := os.ReadFile(publish.ManifestPath(part))
		if err != nil {
			return last, err
		}
		var m publish.Manifest
		if err := json.Unmarshal(b, &m); err != nil {
			return last, err
		}
		scores = append(scores, float64(m.TimingsMs["score_topk"])/1000)
		last = runStats{rss: m.Memory.PeakRSSBytes, examined: m.Counts.PairsExamined, compatible: m.Counts.PairsCompatible, out: part}
	}
	last.wall, last.score = median(walls), median(scores)
	return last, nil
}

// geoOrientationPairs counts the ordered pairs of the population that pass
// the orientation and distance filters alone (ages, blocks and dealbreakers
// opened), the yardstick for how many pairs blocking examines.
func geoOrientationPairs(ctx context.Context, profiles string) (int64, error) {
	L, err := loadPopulation(ctx, profiles)
	if err != nil {
		return 0, err
	}
	p := *L.Pop
	p.AgeMin, p.AgeMax = make([]uint16, p.N), make([]uint16, p.N)
	for i := range p.AgeMax {
		p.AgeMax[i] = math.MaxUint16
	}
	p.Blocked = nil
	return match.CountCompatible(ctx, &p, runtime.GOMAXPROCS(0))
}

// loadPopulation reads a generated workload as a run would.
func loadPopulation(ctx context.Context, profiles string) (*read.Loaded, error) {
	day, _ := time.Parse(time.DateOnly, asOf)
	cfg := read.Config{Profiles: []string{profiles}, AsOf: day, MaxRejectRatio: 1, Workers: runtime.GOMAXPROCS(0)}
	return read.Load(ctx, cfg, slog.New(slog.DiscardHandler), nil)
}

// faissCompare writes the population's unit traits for FAISS, times the
// FAISS process o.Reps times, prints the BLAS it loaded, the ratio of whole-
// process times, and how often the two agree on a member's top K.
func faissCompare(ctx context.Context, o options, w io.Writer, profiles string, printBM func(runStats)) error {
	dir := filepath.Dir(profiles)
	traits := filepath.Join(dir, "traits.f32")
	L, err := loadPopulation(ctx, profiles)
	if err != nil {
		return err
	}
	p := L.Pop
	f, err := os.Create(traits)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(f)
	if err := binary.Write(bw, binary.LittleEndian, p.Trait); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	script, err := filepath.Abs("bench/faiss_flatip.py")
	if err != nil {
		return err
	}
	res := filepath.Join(dir, "faiss.i64")
	faiss := func(core string) (float64, string, error) {
		cmd := exec.CommandContext(ctx, o.Python, script, traits, fmt.Sprint(p.N), fmt.Sprint(p.D), fmt.Sprint(topK), res)
		cmd.Env = append(os.Environ(), "LD_LIBRARY_PATH="+o.BLAS)
		if core != "" {
			cmd.Env = append(cmd.Env, "OPENBLAS_CORETYPE="+core)
		}
		start := time.Now()
		outb, err := cmd.CombinedOutput()
		if err != nil {
			return 0, "", fmt.Errorf("faiss (OPENBLAS_CORETYPE=%q): %w\n%s", core, err, outb)
		}
		return time.Since(start).Seconds(), strings.TrimSpace(string(outb)), nil
	}
	// FAISS at its best: each OpenBLAS core type that suits the CPU is
	// timed (median of o.Reps), the fastest is the one compared against.
	cores := o.Core
	if len(cores) == 0 {
		cores = []string{"Haswell", ""}
		if cpuHasAVX512() {
			cores = []string{"SkylakeX", "Haswell", ""}
		}
	}
	best, bestWall := "", 0.0
	for _, core := range cores {
		var ws []float64
		for range max(o.Reps, 1) {
			wall, _, err := faiss(core)
			if err != nil {
				return err
			}
			ws = append(ws, wall)
		}
		m := median(ws)
		name := core
		if name == "" {
			name = "(OpenBLAS's own choice)"
		}
		fmt.Fprintf(w, "  FAISS with OPENBLAS_CORETYPE=%s: median %.2f s of %d\n", name, m, len(ws))
		if bestWall == 0 || m < bestWall {
			best, bestWall = core, m
		}
	}
	fmt.Fprintf(w, "  FAISS at its best: OPENBLAS_CORETYPE=%q\n", best)
	// Interleaved: a batchmatch run, then a FAISS run, o.Reps times; the
	// ratio is the median of the per-pair ratios, so that a slow patch of
	// this shared machine weighs on both sides of a ratio alike.
	var walls, bms, scores, ratios []float64
	var info string
	var bm runStats
	one := o
	one.Reps = 1
	for range o.Reps {
		b, err := timeRuns(ctx, one, profiles, "1,0,0,0")
		if err != nil {
			return err
		}
		bm = b
		scores = append(scores, b.score)
		fw, out, err := faiss(best)
		if err != nil {
			return err
		}
		walls, bms, ratios = append(walls, fw), append(bms, b.wall), append(ratios, b.wall/fw)
		info = out
	}
	bm.wall, bm.score = median(bms), median(scores)
	printBM(bm)
	fmt.Fprintf(w, "  FAISS IndexFlatIP whole process (python, import, load, add, search k=%d, write): %.2f s\n", topK+1, median(walls))
	fmt.Fprintf(w, "    %s\n", strings.ReplaceAll(info, "\n", "\n    "))
	rs := make([]string, len(ratios))
	for i, r := range ratios {
		rs[i] = fmt.Sprintf("%.2f/%.2f s = %.2f", bms[i], walls[i], r)
	}
	fmt.Fprintf(w, "  ratio batchmatch / FAISS whole-process time, interleaved pairs: median %.2f   (target ≤ 0.5; pairs: %s)\n",
		median(ratios), strings.Join(rs, ", "))

	// agreement: same top-K sets (ties and float rounding may differ)
	nn := make([]int64, p.N*topK)
	rb, err := os.ReadFile(res)
	if err != nil {
		return err
	}
	if err := binary.Read(strings.NewReader(string(rb)), binary.LittleEndian, nn); err != nil {
		return err
	}
	type row struct {
		UserID  int64 `parquet:"user_id"`
		MatchID int64 `parquet:"match_id"`
	}
	rows, err := parquet.ReadFile[row](publish.TablePath(bm.out, "matches"))
	if err != nil {
		return err
	}
	ours := map[int64][]int64{}
	for _, r := range rows {
		ours[r.UserID] = append(ours[r.UserID], r.MatchID)
	}
	same := 0
	for i := range p.N {
		theirs := make([]int64, topK)
		for k := range topK {
			theirs[k] = p.ID[nn[i*topK+k]]
		}
		a := slices.Clone(ours[p.ID[i]])
		slices.Sort(a)
		slices.Sort(theirs)
		if slices.Equal(a, theirs) {
			same++
		}
	}
	fmt.Fprintf(w, "  identical top-%d sets: %d of %d members (%.2f %%; the rest differ by float32 rounding at the K-th place)\n",
		topK, same, p.N, 100*float64(same)/float64(p.N))
	return nil
}

// duckCompare times batchmatch against the spec written as DuckDB SQL
// (testdata/duckdb/spec_peer.mjs) on a realistic population whose shards
// DuckDB itself wrote, both as whole processes, interleaved run by run;
// the ratio is the median of the per-pair ratios. It also counts the
// members whose top-K sets agree.
func duckCompare(ctx context.Context, o options, w io.Writer) error {
	gen, err := workload(ctx, o, "real", synth.Options{N: o.NDuck, D: dim, Q: 64})
	if err != nil {
		return err
	}
	duckDir := filepath.Join(filepath.Dir(gen), "duckdb")
	duck := filepath.Join(duckDir, "profiles.parquet")
	if _, err := os.Stat(duck); err != nil {
		if err := os.MkdirAll(duckDir, 0o755); err != nil {
			return err
		}
		cmd := exec.CommandContext(ctx, "node", filepath.Join(o.Duck, "write_profiles.mjs"), filepath.Join(gen, "*.parquet"), duck)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("DuckDB rewrite of the profiles: %w\n%s", err, out)
		}
	}
	peerOut := filepath.Join(filepath.Dir(duckDir), "peer-topk.parquet") // not in the profiles folder
	var bms, peers, ratios []float64
	var info string
	var bm runStats
	one := o
	one.Reps = 1
	for range o.Reps {
		b, err := timeRuns(ctx, one, duckDir, "")
		if err != nil {
			return err
		}
		bm = b
		cmd := exec.CommandContext(ctx, "node", filepath.Join(o.Duck, "spec_peer.mjs"), duck, asOf, fmt.Sprint(topK), "64", peerOut)
		start := time.Now()
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("DuckDB SQL peer: %w\n%s", err, out)
		}
		pw := time.Since(start).Seconds()
		bms, peers, ratios = append(bms, b.wall), append(peers, pw), append(ratios, pw/b.wall)
		info = strings.TrimSpace(string(out))
	}
	fmt.Fprintf(w, "realistic population, N = %d, written by DuckDB, D = %d, Q = 64, K = %d, default weights:\n", o.NDuck, dim, topK)
	fmt.Fprintf(w, "  batchmatch whole process: %.2f s (scoring %.2f s)\n", median(bms), bm.score)
	fmt.Fprintf(w, "  DuckDB SQL implementation of the spec, whole process (node, load, band join, score, top-K, write): %.2f s\n    %s\n", median(peers), info)
	rs := make([]string, len(ratios))
	for i := range ratios {
		rs[i] = fmt.Sprintf("%.1f/%.2f s = %.0f", peers[i], bms[i], ratios[i])
	}
	fmt.Fprintf(w, "  DuckDB / batchmatch whole-process time, interleaved pairs: median %.0f×   (target ≥ 150×; pairs: %s)\n", median(ratios), strings.Join(rs, ", "))
	same, members, err := sameTopK(peerOut, filepath.Join(bm.out, "matches"))
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "  identical top-%d sets: %d of %d members with a match\n\n", topK, same, members)
	return nil
}

// sameTopK counts the members whose set of matches is the same in the
// peer's top-K file and in batchmatch's matches table (a folder).
func sameTopK(peerFile, matchesDir string) (same, members int, err error) {
	type row struct {
		UserID  int64 `parquet:"user_id"`
		MatchID int64 `parquet:"match_id"`
	}
	sets := func(rows []row) map[int64][]int64 {
		m := map[int64][]int64{}
		for _, r := range rows {
			m[r.UserID] = append(m[r.UserID], r.MatchID)
		}
		for _, l := range m {
			slices.Sort(l)
		}
		return m
	}
	pr, err := parquet.ReadFile[row](peerFile)
	if err != nil {
		return 0, 0, err
	}
	files, _ := filepath.Glob(filepath.Join(matchesDir, "*.parquet"))
	var br []row
	for _, f := range files {
		rows, err := parquet.ReadFile[row](f)
		if err != nil {
			return 0, 0, err
		}
		br = append(br, rows...)
	}
	a, b := sets(pr), sets(br)
	for u, l := range b {
		if slices.Equal(a[u], l) {
			same++
		}
	}
	return same, len(b), nil
}
