package publish_test

import (
	"reflect"

	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	pq "github.com/parquet-go/parquet-go"

	"github.com/osmosis/batchmatch/pipeline"
	"github.com/osmosis/batchmatch/pipeline/internal/runtest"
	"github.com/osmosis/batchmatch/pipeline/publish"
	"github.com/osmosis/batchmatch/pipeline/synth"

	"github.com/apache/arrow-go/v18/parquet/file"
)

// TestOutputLayout pins what analytics readers rely on, read back from the
// footers with arrow-go: identifying key-value metadata, non-empty row
// groups, sorting_columns, statistics and page index on every column, bloom
// filters exactly on the id columns, data page v1, and no NaN.
func TestOutputLayout(t *testing.T) {
	dir := t.TempDir()
	k := synth.DefaultKnobs(300)
	k.Invalid = 0.05
	synth.MustWriteProfiles(t, filepath.Join(dir, "profiles"), synth.Random(13, k), 16, 12, 2, synth.ArrowVariable)
	res, err := pipeline.Run(context.Background(), runtest.BaseConfig(dir), runtest.Quiet)
	if err != nil {
		t.Fatal(err)
	}
	// Written out here, not taken from the writer's layouts, so that the test
	// checks the writer rather than itself.
	for _, tc := range []struct {
		table           string
		sortedBy, bloom []string
	}{
		{"matches", []string{"user_id", "rank"}, []string{"user_id", "match_id"}},
		{"soulmates", []string{"user_a"}, []string{"user_a", "user_b"}},
		{"rejects", []string{"source_file", "row"}, nil},
	} {
		t.Run(tc.table, func(t *testing.T) {
			f, err := os.Open(publish.TablePath(res.Published, tc.table))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			pr, err := file.NewParquetReader(f)
			if err != nil {
				t.Fatal(err)
			}
			defer pr.Close()
			md := pr.MetaData()
			kv := md.KeyValueMetadata()
			for key, want := range map[string]string{"batchmatch.run_id": res.Manifest.RunID, "batchmatch.as_of": "2026-11-24",
				"batchmatch.spec_version": publish.SpecVersion, "batchmatch.version": publish.Version, "batchmatch.config_hash": res.Manifest.ConfigHash} {
				if v := kv.FindValue(key); v == nil || *v != want {
					t.Errorf("footer %s = %v, want %q", key, v, want)
				}
			}
			// created_by in the form readers parse: no "(build )" without a revision
			if got, want := md.GetCreatedBy(), publish.Build().CreatedBy(); got != want {
				t.Errorf("created_by %q, want %q", got, want)
			}
			if v := md.WriterVersion(); v.App != "batchmatch" || fmt.Sprintf("%d.%d.%d", v.Version.Major, v.Version.Minor, v.Version.Patch) != publish.Build().Version {
				t.Errorf("created_by %q is read as %+v", md.GetCreatedBy(), v)
			}
			if md.NumRows == 0 || md.NumRowGroups() == 0 {
				t.Fatalf("%s is empty: the scenario must produce rows", tc.table)
			}
			for g := 0; g < md.NumRowGroups(); g++ {
				rg := md.RowGroup(g)
				if rg.NumRows() == 0 {
					t.Errorf("row group %d is empty", g)
				}
				var sorted []string
				for _, sc := range rg.SortingColumns() {
					if sc.Descending || sc.NullsFirst {
						t.Errorf("sorting column %d is not ascending, nulls last", sc.ColumnIdx)
					}
					sorted = append(sorted, md.Schema.Column(int(sc.ColumnIdx)).Name())
				}
				if !slices.Equal(sorted, tc.sortedBy) {
					t.Errorf("sorting_columns %v, want %v", sorted, tc.sortedBy)
				}
				for c := 0; c < rg.NumColumns(); c++ {
					cc, err := rg.ColumnChunk(c)
					if err != nil {
						t.Fatal(err)
					}
					name := md.Schema.Column(c).Name()
					if ok, _ := cc.StatsSet(); !ok {
						t.Errorf("%s: no statistics", name)
					}
					if cc.GetColumnIndexLocation() == nil || cc.GetOffsetIndexLocation() == nil {
						t.Errorf("%s: no page index", name)
					}
					if hasBloom, want := cc.BloomFilterOffset() > 0, slices.Contains(tc.bloom, name); hasBloom != want {
						t.Errorf("%s: bloom filter %v, want %v", name, hasBloom, want)
					}
				}
				for c := 0; c < rg.NumColumns(); c++ {
					pages, err := pr.RowGroup(g).GetColumnPageReader(c)
					if err != nil {
						t.Fatal(err)
					}
					for pages.Next() {
						if typ := pages.Page().Type(); typ != parquetDataPageV1 && typ != parquetDictPage {
							t.Errorf("%s: page type %v, want data page v1", md.Schema.Column(c).Name(), typ)
						}
					}
				}
			}
		})
	}
	// parquet-go (the writer) and arrow-go read the same rows
	for _, tb := range []string{"matches", "soulmates", "rejects"} {
		path := publish.TablePath(res.Published, tb)
		var same bool
		switch tb {
		case "matches":
			rows, err := pq.ReadFile[publish.MatchRow](path)
			same = err == nil && len(rows) > 0 && reflect.DeepEqual(rows, runtest.ReadMatches(t, path, nil))
		case "soulmates":
			rows, err := pq.ReadFile[publish.SoulmateRow](path)
			same = err == nil && len(rows) > 0 && reflect.DeepEqual(rows, runtest.ReadSoulmates(t, path, nil))
		case "rejects":
			rows, err := pq.ReadFile[publish.RejectRow](path)
			same = err == nil && len(rows) > 0 && reflect.DeepEqual(rows, runtest.ReadRejects(t, path, nil))
		}
		if !same {
			t.Errorf("%s: parquet-go and arrow-go read different rows", tb)
		}
	}
	for _, m := range runtest.ReadMatches(t, publish.TablePath(res.Published, "matches"), nil) {
		for _, v := range []float32{m.Score, m.STrait, m.SQuestions, m.SProximity, m.DistanceKm} {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("non-finite value in %+v", m)
			}
		}
	}
}

var (
	parquetDataPageV1 = file.PageTypeDataPage
	parquetDictPage   = file.PageTypeDictionaryPage
)

// TestEmptyTablesHaveNoRowGroups: a run with nothing to write publishes
// valid Parquet files with a schema and no (empty) row group.
func TestEmptyTablesHaveNoRowGroups(t *testing.T) {
	dir := t.TempDir()
	synth.MustWriteProfiles(t, filepath.Join(dir, "profiles"), nil, 16, 12, 1, synth.ArrowVariable)
	res, err := pipeline.Run(context.Background(), runtest.BaseConfig(dir), runtest.Quiet)
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range []string{"matches", "soulmates", "rejects"} {
		pr, err := file.OpenParquetFile(publish.TablePath(res.Published, tb), false)
		if err != nil {
			t.Fatal(err)
		}
		if n := pr.NumRowGroups(); n != 0 || pr.NumRows() != 0 {
			t.Errorf("%s: %d row groups, %d rows", tb, n, pr.NumRows())
		}
		pr.Close()
	}
}
