package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
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
	o := GenOptions{N: 1500, Shards: 3, Seed: 5, D: 32, Q: 16, AsOf: "2026-11-24", InvalidRatio: 0.01, Out: filepath.Join(dir, "profiles")}
	if _, err := Generate(context.Background(), o, 2); err != nil {
		t.Fatal(err)
	}
	cfg := baseConfig(dir)
	cfg.K, cfg.MaxRejectRatio = 10, 0.1
	res, err := Run(context.Background(), cfg, discard)
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
	res2, err := Run(context.Background(), cfg2, discard)
	if err != nil {
		t.Fatal(err)
	}
	if res2.Manifest.Dims.D != 32 || res2.Manifest.Dims.Q != 16 || res2.Manifest.Counts.RowsQuarantined != c.RowsQuarantined {
		t.Errorf("DuckDB-written input: dims %+v, %d rejects (Arrow-written: %d)", res2.Manifest.Dims, res2.Manifest.Counts.RowsQuarantined, c.RowsQuarantined)
	}
	for _, tb := range []string{"matches", "soulmates"} {
		a, _ := os.ReadFile(tablePath(res.Published, tb))
		b, _ := os.ReadFile(tablePath(res2.Published, tb))
		if !bytes.Equal(a, b) {
			t.Errorf("%s from DuckDB-written shards differs from the Arrow-written run", tb)
		}
	}
}
