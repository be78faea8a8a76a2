package pipeline

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
	pq "github.com/parquet-go/parquet-go"

	"github.com/osmosis/batchmatch/pipeline/failure"
	"github.com/osmosis/batchmatch/pipeline/match"
	"github.com/osmosis/batchmatch/pipeline/synth"
)

// baseConfig is a run over dir/profiles into dir/out.
func baseConfig(dir string) Config {
	return Config{
		Profiles: []string{filepath.Join(dir, "profiles")}, Out: filepath.Join(dir, "out"),
		K: 3, AsOf: synth.AsOf, AsOfDate: "2026-11-24", Weights: match.DefaultWeights, Workers: 2, MaxRejectRatio: 1,
	}
}

// assertNothingPublished checks that a failed run left no partition, no
// _SUCCESS and no staging area behind.
func assertNothingPublished(t *testing.T, out string) {
	t.Helper()
	if _, err := os.Stat(PartitionDir(out, synth.AsOf)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed run published %s (stat: %v)", PartitionDir(out, synth.AsOf), err)
	}
	if _, err := os.Stat(filepath.Join(out, stagingDir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed run left its staging area behind (stat: %v)", err)
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
			cfg := baseConfig(dir)
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			cfg.Alloc = mem
			_, err := Run(context.Background(), cfg, discard)
			if !errors.Is(err, c.kind) {
				t.Fatalf("got %v, want %v", err, c.kind)
			}
			for _, m := range c.mention {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
			assertNothingPublished(t, cfg.Out)
			mem.AssertSize(t, 0)
		})
	}
}

func TestRejectRatio(t *testing.T) {
	dir := t.TempDir()
	k := synth.DefaultKnobs(200)
	k.Invalid = 0.1
	synth.MustWriteProfiles(t, filepath.Join(dir, "profiles"), synth.Random(3, k), 16, 12, 2, synth.ArrowVariable)
	cfg := baseConfig(dir)
	cfg.MaxRejectRatio = 0.01
	_, err := Run(context.Background(), cfg, discard)
	if !errors.Is(err, failure.BadData) || !strings.Contains(err.Error(), "--max-reject-ratio") {
		t.Fatalf("got %v, want a reject-ratio failure.BadData", err)
	}
	assertNothingPublished(t, cfg.Out)
	cfg.MaxRejectRatio = 0.5
	if _, err := Run(context.Background(), cfg, discard); err != nil {
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
		cfg := baseConfig(dir)
		cfg.Workers = v.workers
		res, err := Run(context.Background(), cfg, discard)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string][]byte{}
		for _, tb := range []string{"matches", "soulmates"} {
			got[tb], _ = os.ReadFile(tablePath(res.Published, tb))
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

func TestCommitProtocol(t *testing.T) {
	dir := t.TempDir()
	synth.MustWriteProfiles(t, filepath.Join(dir, "profiles"), synth.Random(6, synth.DefaultKnobs(40)), 16, 12, 1, synth.ArrowFixed)
	cfg := baseConfig(dir)
	// leftovers of a crashed run are cleaned up
	junk := filepath.Join(cfg.Out, stagingDir, "crashed-attempt", "dt=2026-11-24")
	os.MkdirAll(junk, 0o755)
	res, err := Run(context.Background(), cfg, discard)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(cfg.Out, stagingDir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("staging area survived a successful run")
	}
	for _, f := range []string{"_SUCCESS", "manifest.json", "matches/" + partFile, "soulmates/" + partFile, "rejects/" + partFile} {
		st, err := os.Stat(filepath.Join(res.Published, f))
		if err != nil {
			t.Fatalf("published run lacks %s: %v", f, err)
		}
		if st.Mode().Perm()&0o007 != 0 {
			t.Errorf("%s is world-accessible: %v", f, st.Mode())
		}
	}
	// an identical re-run succeeds without writing anything; a run of
	// other settings is refused without --overwrite
	before0, _ := os.ReadFile(filepath.Join(res.Published, successFile))
	if again, err := Run(context.Background(), cfg, discard); err != nil || !again.AlreadyPublished {
		t.Fatalf("identical re-run without overwrite: %v, want success without publishing", err)
	}
	if after0, _ := os.ReadFile(filepath.Join(res.Published, successFile)); !bytes.Equal(before0, after0) {
		t.Fatal("an identical re-run replaced the partition")
	}
	other := cfg
	other.K = cfg.K + 1
	if _, err := Run(context.Background(), other, discard); !errors.Is(err, failure.Exists) {
		t.Fatalf("re-run of other settings without overwrite: %v, want failure.Exists", err)
	}
	// and replaces the partition with it
	before, _ := os.ReadFile(filepath.Join(res.Published, "manifest.json"))
	cfg.Overwrite = true
	res2, err := Run(context.Background(), cfg, discard)
	if err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(filepath.Join(res2.Published, "manifest.json"))
	if bytes.Equal(before, after) || res2.Manifest.AttemptID == res.Manifest.AttemptID {
		t.Error("overwrite did not replace the partition")
	}
	if res2.Manifest.RunID != res.Manifest.RunID || len(res.Manifest.RunID) != 32 {
		t.Errorf("same input and configuration, different run ids: %q, %q", res.Manifest.RunID, res2.Manifest.RunID)
	}
	// a second run while the lock is held exits with failure.Locked naming the holder
	com, err := openCommitter(cfg.Out, DefaultPartition(synth.AsOf), "holder-attempt", discard, false)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Run(context.Background(), cfg, discard)
	com.cleanup()
	if !errors.Is(err, failure.Locked) || !strings.Contains(err.Error(), "holder-attempt") {
		t.Fatalf("concurrent run: %v, want failure.Locked naming the holder", err)
	}
}

func TestCancelledRunPublishesNothing(t *testing.T) {
	dir := t.TempDir()
	synth.MustWriteProfiles(t, filepath.Join(dir, "profiles"), synth.Random(7, synth.DefaultKnobs(100)), 16, 12, 2, synth.ArrowFixed)
	cfg := baseConfig(dir)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Run(ctx, cfg, discard); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	assertNothingPublished(t, cfg.Out)
}

// TestUnfinishedPublishIsReplaced: a partition without _SUCCESS (a crash
// between the rename and the marker) does not block the next run.
func TestUnfinishedPublishIsReplaced(t *testing.T) {
	dir := t.TempDir()
	synth.MustWriteProfiles(t, filepath.Join(dir, "profiles"), synth.Random(9, synth.DefaultKnobs(30)), 16, 12, 1, synth.ArrowFixed)
	cfg := baseConfig(dir)
	half := PartitionDir(cfg.Out, synth.AsOf)
	os.MkdirAll(filepath.Join(half, "matches"), 0o750)
	os.WriteFile(filepath.Join(half, "matches", partFile), []byte("half-written"), 0o640)
	res, err := Run(context.Background(), cfg, discard)
	if err != nil {
		t.Fatalf("run over an unfinished publish: %v", err)
	}
	if b, _ := os.ReadFile(tablePath(res.Published, "matches")); bytes.Equal(b, []byte("half-written")) {
		t.Fatal("unfinished partition was not replaced")
	}
	if !published(res.Published) {
		t.Fatal("no _SUCCESS")
	}
}

// TestManifestFingerprint: the manifest names every input with its size and
// checksum, and the configuration hash changes exactly when output can.
func TestManifestFingerprint(t *testing.T) {
	dir := t.TempDir()
	paths := synth.MustWriteProfiles(t, filepath.Join(dir, "profiles"), synth.Random(10, synth.DefaultKnobs(40)), 16, 12, 2, synth.ArrowFixed)
	cfg := baseConfig(dir)
	res, err := Run(context.Background(), cfg, discard)
	if err != nil {
		t.Fatal(err)
	}
	m := res.Manifest
	if len(m.Inputs.Profiles) != 2 || m.Version != Version || m.AsOf != "2026-11-24" {
		t.Fatalf("manifest %+v", m)
	}
	for i, in := range m.Inputs.Profiles {
		b, _ := os.ReadFile(paths[i])
		sum := sha256.Sum256(b)
		if in.Path != paths[i] || in.Size != int64(len(b)) || in.SHA256 != hex.EncodeToString(sum[:]) {
			t.Errorf("input %d: %+v", i, in)
		}
	}
	same := cfg
	same.Workers, same.Overwrite = 7, true
	other := cfg
	other.K = 4
	if configHash(same, m.Dims, "") != m.ConfigHash || configHash(other, m.Dims, "") == m.ConfigHash || configHash(cfg, m.Dims, "k1") == m.ConfigHash {
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

func TestPartitionFlag(t *testing.T) {
	for _, tc := range []struct {
		flag, want string
		ok         bool
	}{{"", "dt=2026-11-24", true}, {"date=2026-11-24", "date=2026-11-24", true}, {"latest", "latest", true},
		{"a/b", "", false}, {"..", "", false}, {"_temporary", "", false}, {".hidden", "", false}} {
		o := Options{Profiles: []string{"p"}, Out: "o", K: 1, Workers: 1, Weights: defaultWeights[:], AsOf: "2026-11-24", Partition: tc.flag}
		c, err := o.Config(synth.AsOf, true)
		if tc.ok != (err == nil) || (tc.ok && c.Partition != tc.want) {
			t.Errorf("--partition %q: %q, %v", tc.flag, c.Partition, err)
		}
	}
	dir := t.TempDir()
	synth.MustWriteProfiles(t, filepath.Join(dir, "profiles"), synth.Random(12, synth.DefaultKnobs(20)), 16, 12, 1, synth.ArrowFixed)
	cfg := baseConfig(dir)
	cfg.Partition = "run=nightly"
	res, err := Run(context.Background(), cfg, discard)
	if err != nil || res.Published != filepath.Join(cfg.Out, "run=nightly") || !published(res.Published) {
		t.Fatalf("%v, %+v", err, res)
	}
}

// TestFloat64Traits: list<float64> traits (spec §1) give the same tables as
// the float32 form of the same members; a finite value beyond float32 is
// quarantined as trait_out_of_range.
func TestFloat64Traits(t *testing.T) {
	type row struct {
		UserID  int64     `parquet:"user_id"`
		Consent bool      `parquet:"consent"`
		Health  bool      `parquet:"health_consent"`
		Gender  int32     `parquet:"gender"`
		Seeking int32     `parquet:"seeking"`
		Birth   int32     `parquet:"birth_date,date"`
		AgeMin  int32     `parquet:"age_min"`
		AgeMax  int32     `parquet:"age_max"`
		Lat     float64   `parquet:"lat"`
		Lon     float64   `parquet:"lon"`
		MaxKm   float64   `parquet:"max_km"`
		Trait   []float64 `parquet:"trait,list"`
		HLA     []byte    `parquet:"hla"`
		Ans     []byte    `parquet:"answers"`
		Acc     []byte    `parquet:"accept"`
		Imp     []byte    `parquet:"importance"`
	}
	k := synth.DefaultKnobs(200)
	k.ConsentP, k.HealthP = 1, 1
	var ms []synth.Member
	for _, m := range synth.Random(31, k) { // fully populated rows only: this form has no nulls
		if m.Consent != nil && m.Health != nil && m.HLA != nil {
			ms = append(ms, m)
		}
	}
	dir := t.TempDir()
	synth.MustWriteProfiles(t, filepath.Join(dir, "f32"), ms, k.D, k.Q, 1, synth.ArrowVariable)
	rows := make([]row, len(ms))
	for i, m := range ms {
		tr := make([]float64, len(m.Trait))
		for j, x := range m.Trait {
			tr[j] = float64(x)
		}
		rows[i] = row{*m.ID, *m.Consent, *m.Health, int32(*m.Gender), int32(*m.Seeking), *m.Birth, int32(*m.AgeMin), int32(*m.AgeMax),
			*m.Lat, *m.Lon, float64(*m.MaxKm), tr, m.HLA, m.Ans, m.Acc, m.Imp}
	}
	rows[0].Trait[1] = 1e300 // finite, not a float32
	os.MkdirAll(filepath.Join(dir, "f64"), 0o755)
	if err := pq.WriteFile(filepath.Join(dir, "f64", "a.parquet"), rows, synth.PlainBytes); err != nil {
		t.Fatal(err)
	}
	var out [2]*Result
	for v, sub := range []string{"f32", "f64"} {
		cfg := baseConfig(dir)
		cfg.Profiles, cfg.Out = []string{filepath.Join(dir, sub)}, filepath.Join(dir, "out-"+sub)
		res, err := Run(context.Background(), cfg, discard)
		if err != nil {
			t.Fatal(err)
		}
		out[v] = res
	}
	if got := out[1].Manifest.Counts.QuarantinedByReason["trait_out_of_range"]; got != 1 {
		t.Fatalf("trait_out_of_range: %d, want 1 (%v)", got, out[1].Manifest.Counts.QuarantinedByReason)
	}
	// the float64 run lost member 0; compare against a float32 run without it
	ms2 := ms[1:]
	synth.MustWriteProfiles(t, filepath.Join(dir, "f32b"), ms2, k.D, k.Q, 1, synth.ArrowVariable)
	cfg := baseConfig(dir)
	cfg.Profiles, cfg.Out = []string{filepath.Join(dir, "f32b")}, filepath.Join(dir, "out-f32b")
	ref, err := Run(context.Background(), cfg, discard)
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range []string{"matches", "soulmates"} {
		a, _ := os.ReadFile(tablePath(ref.Published, tb))
		b, _ := os.ReadFile(tablePath(out[1].Published, tb))
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("%s from float64 traits differs from the float32 form", tb)
		}
	}
}
