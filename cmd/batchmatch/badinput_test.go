package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	pq "github.com/parquet-go/parquet-go"

	"github.com/osmosis/batchmatch/pipeline/publish"
)

// rejectReasons reads a published rejects table with arrow-go.
func rejectReasons(t *testing.T, part string) map[string]int {
	t.Helper()
	f, err := os.Open(publish.TablePath(part, "rejects"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pr, err := file.NewParquetReader(f)
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	fr, err := pqarrow.NewFileReader(pr, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Release()
	out := map[string]int{}
	col := tbl.Column(int(tbl.Schema().FieldIndices("reason")[0]))
	for _, ch := range col.Data().Chunks() {
		s := ch.(*array.String)
		for i := 0; i < s.Len(); i++ {
			out[s.Value(i)]++
		}
	}
	return out
}

// assertNothingPublished checks a failed run left only its lock file.
func assertNothingPublished(t *testing.T, out string) {
	t.Helper()
	entries, _ := os.ReadDir(out)
	for _, e := range entries {
		if e.Name() != ".lock" {
			t.Errorf("failed run left %s in the output", e.Name())
		}
	}
}

func TestBadInputSuite(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level")
	}
	bin := buildBinary(t)
	base := t.TempDir()
	good := genSample(t, base, "400") // two shards
	shard := func() []byte {
		b, err := os.ReadFile(filepath.Join(good, "profiles-00000-of-00002.parquet"))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	type fileCase struct {
		name  string
		setup func(dir string) // writes dir/*.parquet
		code  int
		say   []string // the message must contain these
	}
	write := func(dir, name string, b []byte) { os.WriteFile(filepath.Join(dir, name), b, 0o644) }
	cases := []fileCase{
		{"zero-byte file", func(d string) { write(d, "a.parquet", nil) }, exitDataErr, []string{"a.parquet", "not a readable Parquet file"}},
		{"not parquet", func(d string) { write(d, "a.parquet", []byte("user_id,consent\n1,true\n")) }, exitDataErr, []string{"a.parquet"}},
		{"truncated file", func(d string) { b := shard(); write(d, "a.parquet", b[:len(b)*2/3]) }, exitDataErr, []string{"a.parquet"}},
		{"corrupted page", func(d string) {
			b := shard()
			for i := 64; i < len(b)/2; i += 5 {
				b[i] ^= 0xa5
			}
			write(d, "a.parquet", b)
		}, exitDataErr, []string{"a.parquet"}},
		{"missing column", func(d string) {
			type row struct {
				UserID  int64 `parquet:"user_id"`
				Consent bool  `parquet:"consent"`
			}
			pq.WriteFile(filepath.Join(d, "a.parquet"), []row{{1, true}})
		}, exitDataErr, []string{"a.parquet", `column "gender"`, "missing"}},
		{"wrong column type", func(d string) {
			b := shard()
			write(d, "a.parquet", b)
			type row struct {
				UserID  string `parquet:"user_id"`
				Consent bool   `parquet:"consent"`
			}
			pq.WriteFile(filepath.Join(d, "b.parquet"), []row{{"x", true}})
		}, exitDataErr, []string{"b.parquet", `column "user_id"`, "want an integer"}},
		{"no parquet files", func(d string) { write(d, "README.txt", []byte("empty")) }, exitNoInput, []string{"no .parquet file"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			in := filepath.Join(dir, "in")
			os.MkdirAll(in, 0o755)
			c.setup(in)
			out := filepath.Join(dir, "out")
			code, stderr := runBin(t, bin, "run", "--profiles", in, "--out", out, "--as-of", "2026-11-24", "--log-format", "json")
			if code != c.code {
				t.Fatalf("exit %d, want %d\n%s", code, c.code, stderr)
			}
			for _, s := range c.say {
				if !strings.Contains(logText(stderr), s) {
					t.Errorf("stderr lacks %q:\n%s", s, stderr)
				}
			}
			assertNothingPublished(t, out)
		})
	}

	// Row-level: every invalid kind the generator makes (variable-width forms
	// hold wrong lengths and null traits too), NaN/Inf included.
	t.Run("invalid rows", func(t *testing.T) {
		dir := t.TempDir()
		in := filepath.Join(dir, "in")
		if code, stderr := runBin(t, bin, "gen", "--out", in, "--n", "3000", "--shards", "3", "--as-of", "2026-11-24",
			"--variable-width", "--invalid-ratio", "0.2"); code != 0 {
			t.Fatalf("gen: %d\n%s", code, stderr)
		}
		out := filepath.Join(dir, "out")
		code, stderr := runBin(t, bin, "run", "--profiles", in, "--out", out, "--as-of", "2026-11-24", "--log-format", "json")
		if code != exitDataErr || !strings.Contains(stderr, "--max-reject-ratio") {
			t.Fatalf("default reject ratio: exit %d\n%s", code, stderr)
		}
		assertNothingPublished(t, out)
		code, stderr = runBin(t, bin, "run", "--profiles", in, "--out", out, "--as-of", "2026-11-24", "--log-format", "json", "--max-reject-ratio", "0.5")
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		got := rejectReasons(t, filepath.Join(out, "dt=2026-11-24"))
		for _, r := range []string{"null_gender", "gender_out_of_range", "seeking_out_of_range", "age_min_above_age_max",
			"lat_out_of_range", "lon_out_of_range", "max_km_out_of_range", "trait_non_finite", "trait_zero_norm", "null_trait",
			"answers_out_of_range", "importance_out_of_range", "birth_date_after_as_of", "null_lat", "null_user_id",
			"duplicate_user_id", "trait_wrong_length", "hla_wrong_length"} {
			if got[r] == 0 {
				t.Errorf("no %s in rejects (got %v)", r, got)
			}
		}
	})

	// Duplicate ids across shards: the same shard twice rejects every copy.
	t.Run("duplicate ids across shards", func(t *testing.T) {
		dir := t.TempDir()
		in := filepath.Join(dir, "in")
		os.MkdirAll(in, 0o755)
		write(in, "a.parquet", shard())
		write(in, "b.parquet", shard())
		out := filepath.Join(dir, "out")
		code, stderr := runBin(t, bin, "run", "--profiles", in, "--out", out, "--as-of", "2026-11-24", "--log-format", "json", "--max-reject-ratio", "1")
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		got := rejectReasons(t, filepath.Join(out, "dt=2026-11-24"))
		if got["duplicate_user_id"] < 390 {
			t.Errorf("duplicate_user_id rejects: %v", got)
		}
	})

	// An empty shard (schema, no rows) beside a good one is not an error.
	t.Run("empty shard", func(t *testing.T) {
		dir := t.TempDir()
		in := filepath.Join(dir, "in")
		if code, _ := runBin(t, bin, "gen", "--out", in, "--n", "0", "--shards", "1", "--as-of", "2026-11-24"); code != 0 {
			t.Fatal("gen --n 0 failed")
		}
		write(in, "good.parquet", shard())
		code, stderr := runBin(t, bin, "run", "--profiles", in, "--out", filepath.Join(dir, "out"), "--as-of", "2026-11-24", "--log-format", "json")
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
	})

	// A named suppression list that does not exist is input missing (66):
	// running without it would match members who asked to be erased.
	t.Run("missing suppression list", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "out")
		code, stderr := runBin(t, bin, "run", "--profiles", good, "--out", out, "--as-of", "2026-11-24", "--log-format", "json",
			"--suppress", filepath.Join(base, "erasures.parquet"))
		if code != exitNoInput || !strings.Contains(stderr, "erasures.parquet") {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		assertNothingPublished(t, out)
	})
}
