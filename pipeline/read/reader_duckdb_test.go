package read_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/osmosis/batchmatch/pipeline"
	"github.com/osmosis/batchmatch/pipeline/internal/runtest"
	"github.com/osmosis/batchmatch/pipeline/publish"
	"github.com/osmosis/batchmatch/pipeline/synth"
)

// duckDBDir returns the Node project with DuckDB installed (make test sets
// BATCHMATCH_DUCKDB_DIR after `npm ci`); plain `go test` skips.
func duckDBDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("BATCHMATCH_DUCKDB_DIR")
	if dir == "" {
		t.Skip("BATCHMATCH_DUCKDB_DIR not set: `make test` installs DuckDB and runs this test")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@duckdb", "node-api")); err != nil {
		t.Fatalf("DuckDB is not installed in %s (npm ci): %v", dir, err)
	}
	return dir
}

func node(t *testing.T, dir, script string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("node", append([]string{filepath.Join(dir, script)}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node %s: %v\n%s", script, err, stderr.String())
	}
	return out
}

// TestDuckDB uses DuckDB as analysts do: it reads every output table (schema,
// row counts, sort order, aggregates and footer metadata checked against the
// manifest), and it writes profile shards in its own physical types, from
// which batchmatch must produce byte-identical match tables.
func TestDuckDB(t *testing.T) {
	duck := duckDBDir(t)
	dir := t.TempDir()
	o := synth.Options{N: 1500, Shards: 3, Seed: 5, D: 32, Q: 16, AsOf: "2026-11-24", InvalidRatio: 0.01, Out: filepath.Join(dir, "profiles")}
	if _, err := synth.Generate(context.Background(), o, 2); err != nil {
		t.Fatal(err)
	}
	cfg := runtest.BaseConfig(dir)
	cfg.K, cfg.MaxRejectRatio = 10, 0.1
	res, err := pipeline.Run(context.Background(), cfg, runtest.Quiet)
	if err != nil {
		t.Fatal(err)
	}
	m := res.Manifest

	var facts struct {
		Matches struct {
			Schema               []string
			Rows, Unsorted       int64
			Members, Mutual, NaN string
			MinScore             float64 `json:"min_score"`
			MaxScore             float64 `json:"max_score"`
		}
		Soulmates struct {
			Schema         []string
			Rows, Unsorted int64
			Unordered      string
			DupA           string `json:"dup_a"`
		}
		Rejects struct {
			Schema []string
			Rows   int64
		}
		Hive []string
		KV   map[string]string
	}
	raw := node(t, duck, "read_outputs.mjs", cfg.Out, res.Published)
	if err := json.Unmarshal(raw, &facts); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	want := map[string][]string{
		"matches": {"user_id:BIGINT", "rank:INTEGER", "match_id:BIGINT", "score:FLOAT", "s_trait:FLOAT", "s_questions:FLOAT",
			"s_biomarker:FLOAT", "s_proximity:FLOAT", "distance_km:FLOAT", "mutual:BOOLEAN", "dt:DATE"},
		"soulmates": {"user_a:BIGINT", "user_b:BIGINT", "score:FLOAT", "rank_a:INTEGER", "rank_b:INTEGER", "dt:DATE"},
		"rejects":   {"source_file:VARCHAR", "row:BIGINT", "user_id:BIGINT", "reason:VARCHAR", "dt:DATE"},
	}
	for tb, got := range map[string][]string{"matches": facts.Matches.Schema, "soulmates": facts.Soulmates.Schema, "rejects": facts.Rejects.Schema} {
		if !slices.Equal(got, want[tb]) {
			t.Errorf("DuckDB sees %s as %v, want %v", tb, got, want[tb])
		}
	}
	num := func(s string) int64 { v, _ := strconv.ParseInt(s, 10, 64); return v }
	c := m.Counts
	checks := []struct {
		what      string
		got, want int64
	}{
		{"matches rows", facts.Matches.Rows, m.Outputs["matches"].Rows},
		{"soulmates rows", facts.Soulmates.Rows, m.Outputs["soulmates"].Rows},
		{"rejects rows", facts.Rejects.Rows, c.RowsQuarantined},
		{"matches out of order", facts.Matches.Unsorted, 0},
		{"soulmates out of order", facts.Soulmates.Unsorted, 0},
		{"members with a match", num(facts.Matches.Members), c.Eligible - c.MembersWithoutMatch},
		{"mutual matches", num(facts.Matches.Mutual), c.MutualMatches},
		{"NaN scores", num(facts.Matches.NaN), 0},
		{"soulmate pairs with user_a >= user_b", num(facts.Soulmates.Unordered), 0},
		{"members in two soulmate pairs as user_a", num(facts.Soulmates.DupA), 0},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s: DuckDB %d, manifest %d", ck.what, ck.got, ck.want)
		}
	}
	if !(facts.Matches.MinScore > 0 && facts.Matches.MaxScore <= 1) {
		t.Errorf("scores outside (0, 1]: %v..%v", facts.Matches.MinScore, facts.Matches.MaxScore)
	}
	if !(facts.Matches.MinScore > 0 && facts.Matches.MaxScore <= 1) {
		t.Errorf("scores outside (0, 1]: %v..%v", facts.Matches.MinScore, facts.Matches.MaxScore)
	}
	if c.Matches == 0 || c.RowsQuarantined == 0 || c.Soulmates == 0 {
		t.Fatalf("scenario too thin: %+v", c)
	}
	if !slices.Equal(facts.Hive, []string{"2026-11-24"}) || facts.KV["batchmatch.run_id"] != m.RunID {
		t.Errorf("hive partitions %v, footer run id %q (manifest %q)", facts.Hive, facts.KV["batchmatch.run_id"], m.RunID)
	}

	// DuckDB-written shards: lists, BLOBs and signed integers.
	dd := filepath.Join(dir, "duck")
	os.MkdirAll(dd, 0o755)
	schema := node(t, duck, "write_profiles.mjs", filepath.Join(o.Out, "*.parquet"), filepath.Join(dd, "profiles.parquet"))
	for _, s := range []string{`"trait:FLOAT[]"`, `"hla:BLOB"`, `"gender:INTEGER"`, `"seeking:SMALLINT"`} {
		if !bytes.Contains(schema, []byte(s)) {
			t.Fatalf("DuckDB wrote %s, want %s", schema, s)
		}
	}
	cfg2 := cfg
	cfg2.Profiles, cfg2.Out = []string{dd}, filepath.Join(dir, "out-duck")
	res2, err := pipeline.Run(context.Background(), cfg2, runtest.Quiet)
	if err != nil {
		t.Fatal(err)
	}
	if res2.Manifest.Dims.D != 32 || res2.Manifest.Dims.Q != 16 || res2.Manifest.Counts.RowsQuarantined != c.RowsQuarantined {
		t.Errorf("DuckDB-written input: dims %+v, %d rejects (Arrow-written: %d)", res2.Manifest.Dims, res2.Manifest.Counts.RowsQuarantined, c.RowsQuarantined)
	}
	for _, tb := range []string{"matches", "soulmates"} {
		a, _ := os.ReadFile(publish.TablePath(res.Published, tb))
		b, _ := os.ReadFile(publish.TablePath(res2.Published, tb))
		if !bytes.Equal(a, b) {
			t.Errorf("%s from DuckDB-written shards differs from the Arrow-written run", tb)
		}
	}
}

// TestDuckDBNullArrays is the reported case: DuckDB writes a NULL
// FLOAT[4] as a Parquet list padded with level-only entries, which
// arrow-go's list assembly turned into offsets past the values, shifting
// the trait of every later row. A NULL array, and an array holding a NULL,
// must each quarantine their own row only, in the array and the list type.
func TestDuckDBNullArrays(t *testing.T) {
	duck := duckDBDir(t)
	for _, traitType := range []string{"FLOAT[4]", "FLOAT[]"} {
		t.Run(traitType, func(t *testing.T) {
			dir := t.TempDir()
			os.MkdirAll(filepath.Join(dir, "profiles"), 0o755)
			path := filepath.Join(dir, "profiles", "duck.parquet")
			sql := `select user_id::BIGINT user_id, true consent, false health_consent, 0::UTINYINT gender,
				7::UTINYINT seeking, date '1990-01-01' birth_date, 18::UTINYINT age_min, 99::UTINYINT age_max,
				48.85::DOUBLE lat, 2.35::DOUBLE lon, 50::FLOAT max_km, trait::` + traitType + ` trait,
				from_hex(repeat('00', 32)) hla, from_hex('0101') answers, from_hex('FFFF') accept, from_hex('0101') importance
				from (values (1, [1, 0, 0, 0]), (2, NULL), (3, [0, 1, 0, 0]), (4, [0, NULL, 1, 0]), (5, [1, 0, 0, 0])) t(user_id, trait)`
			node(t, duck, "write_sql.mjs", path, sql)
			cfg := runtest.BaseConfig(dir)
			cfg.MaxRejectRatio = 1
			res, err := pipeline.Run(context.Background(), cfg, runtest.Quiet)
			if err != nil {
				t.Fatal(err)
			}
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			rejects := runtest.ReadRejects(t, publish.TablePath(res.Published, "rejects"), mem)
			matches := runtest.ReadMatches(t, publish.TablePath(res.Published, "matches"), mem)
			mem.AssertSize(t, 0)
			var got []string
			for _, r := range rejects {
				got = append(got, fmt.Sprintf("row %d id %d %s", r.Row, *r.UserID, r.Reason))
			}
			if want := []string{"row 1 id 2 null_trait", "row 3 id 4 null_trait"}; !slices.Equal(got, want) {
				t.Fatalf("rejects %v, want %v", got, want)
			}
			// 1 and 5 share a trait (s_trait 1); 3 is orthogonal to both (0.5).
			want := map[[2]int64]float32{{1, 5}: 1, {5, 1}: 1, {1, 3}: 0.5, {3, 1}: 0.5, {3, 5}: 0.5, {5, 3}: 0.5}
			if len(matches) != len(want) {
				t.Fatalf("%d matches, want %d: %+v", len(matches), len(want), matches)
			}
			for _, m := range matches {
				if st, ok := want[[2]int64{m.UserID, m.MatchID}]; !ok || math.Abs(float64(m.STrait-st)) > 1e-6 {
					t.Errorf("match %d-%d: s_trait %v, want %v (listed: %v)", m.UserID, m.MatchID, m.STrait, st, ok)
				}
			}
		})
	}
}

// TestDuckDBReaderDifferential: one random population with nulls in every
// nullable column, written by arrow-go (fixed and variable width),
// parquet-go and DuckDB (the trait as FLOAT[] and as FLOAT[D]), must give
// byte-identical match and soulmate tables and the same rejects.
func TestDuckDBReaderDifferential(t *testing.T) {
	duck := duckDBDir(t)
	dir := t.TempDir()
	k := synth.DefaultKnobs(400)
	k.Nulls, k.Clones = 0.25, 0.05
	ms := synth.Random(31, k)
	src := filepath.Join(dir, "arrow-variable")
	synth.MustWriteProfiles(t, src, ms, k.D, k.Q, 2, synth.ArrowVariable)
	type variant struct {
		name string
		dir  string
	}
	variants := []variant{{"arrow-variable", src}}
	for _, form := range []synth.Form{synth.ArrowFixed, synth.ParquetGo} {
		if form.CanHold(ms, k.D, k.Q) {
			d := filepath.Join(dir, form.String())
			synth.MustWriteProfiles(t, d, ms, k.D, k.Q, 2, form)
			variants = append(variants, variant{form.String(), d})
		}
	}
	nullTraits := 0
	for _, m := range ms {
		if m.Trait == nil {
			nullTraits++
		}
	}
	if nullTraits < 3 {
		t.Fatalf("scenario too thin: %d null traits", nullTraits)
	}
	for _, tt := range []string{"FLOAT[]", fmt.Sprintf("FLOAT[%d]", k.D)} {
		d := filepath.Join(dir, "duckdb-"+tt)
		os.MkdirAll(d, 0o755)
		for s := range 2 {
			in := filepath.Join(src, "shard-"+string(rune('a'+s))+".parquet")
			node(t, duck, "write_profiles.mjs", in, filepath.Join(d, "shard-"+string(rune('a'+s))+".parquet"), tt)
		}
		variants = append(variants, variant{"duckdb " + tt, d})
	}
	type outcome struct {
		matches, soulmates []byte
		rejects            []string
	}
	var first outcome
	for i, v := range variants {
		cfg := runtest.BaseConfig(dir)
		cfg.Profiles, cfg.Out, cfg.MaxRejectRatio = []string{v.dir}, filepath.Join(dir, "out", fmt.Sprint(i)), 1
		res, err := pipeline.Run(context.Background(), cfg, runtest.Quiet)
		if err != nil {
			t.Fatalf("%s: %v", v.name, err)
		}
		var o outcome
		o.matches, _ = os.ReadFile(publish.TablePath(res.Published, "matches"))
		o.soulmates, _ = os.ReadFile(publish.TablePath(res.Published, "soulmates"))
		for _, r := range runtest.ReadRejects(t, publish.TablePath(res.Published, "rejects"), memory.NewGoAllocator()) {
			id := "null"
			if r.UserID != nil {
				id = fmt.Sprint(*r.UserID)
			}
			o.rejects = append(o.rejects, fmt.Sprintf("%s/%d %s %s", filepath.Base(r.SourceFile), r.Row, id, r.Reason))
		}
		if i == 0 {
			first = o
			if len(o.rejects) < 50 || len(o.matches) == 0 {
				t.Fatalf("scenario too thin: %d rejects", len(o.rejects))
			}
			continue
		}
		if !bytes.Equal(o.matches, first.matches) || !bytes.Equal(o.soulmates, first.soulmates) {
			t.Errorf("%s: tables differ from %s's", v.name, variants[0].name)
		}
		if !slices.Equal(o.rejects, first.rejects) {
			t.Errorf("%s: rejects differ from %s's:\n%v\n%v", v.name, variants[0].name, o.rejects, first.rejects)
		}
	}
}
