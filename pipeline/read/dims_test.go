package read

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	pq "github.com/parquet-go/parquet-go"

	"github.com/osmosis/batchmatch/pipeline/failure"
	"github.com/osmosis/batchmatch/pipeline/synth"
)

// TestSuppressedRowsDoNotDecideDims: D and Q come from the rows that are
// not suppressed (spec v1.1): five rows of width 4, three of them
// suppressed, against three rows of width 5, give D = 5 and no rejects.
func TestSuppressedRowsDoNotDecideDims(t *testing.T) {
	k := synth.DefaultKnobs(8)
	k.Invalid, k.Nulls, k.ConsentP = 0, 0, 1
	ms := synth.Random(5, k)
	var suppress []int64
	for i := range ms {
		d, q := 4, 3
		if i >= 5 {
			d, q = 5, 2
		}
		ms[i].Trait = ms[i].Trait[:d]
		ms[i].Ans, ms[i].Acc, ms[i].Imp = ms[i].Ans[:q], ms[i].Acc[:q], ms[i].Imp[:q]
		if i < 3 {
			suppress = append(suppress, *ms[i].ID)
		}
	}
	// without suppression, widths 4 and 3 are the most common (5 rows to 3)
	dir := t.TempDir()
	synth.MustWriteProfiles(t, filepath.Join(dir, "profiles"), ms, 5, 2, 2, synth.ArrowVariable)
	type sup struct {
		UserID int64 `parquet:"user_id"`
	}
	rows := make([]sup, len(suppress))
	for i, id := range suppress {
		rows[i] = sup{id}
	}
	sp := filepath.Join(dir, "suppress.parquet")
	if err := pq.WriteFile(sp, rows); err != nil {
		t.Fatal(err)
	}
	cfg := baseConfig(dir)
	cfg.Suppress, cfg.MaxRejectRatio = []string{sp}, 1
	L, err := Load(context.Background(), cfg, discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	// 2 rows of (4, 3) and 3 of (5, 2) remain: D = 5, Q = 2 (answers,
	// accept and importance counted together: 6 of width 3, 9 of width 2).
	if L.Dims.D != 5 || L.Dims.Q != 2 || L.Counts.RowsSuppressed != 3 {
		t.Fatalf("dims %+v, suppressed %d; want D=5 Q=2 and 3 suppressed", L.Dims, L.Counts.RowsSuppressed)
	}
	if got := L.Counts.RowsQuarantined; got != 2 {
		t.Fatalf("%d rows quarantined (%v), want the 2 unsuppressed rows of the other widths", got, L.Counts.QuarantinedByReason)
	}
	// a tie goes to the smaller length
	cfg.Suppress = nil
	ms2 := append([]synth.Member{}, ms[2:]...) // 3 rows of (4, 3) and 3 of (5, 2)
	dir2 := t.TempDir()
	synth.MustWriteProfiles(t, filepath.Join(dir2, "profiles"), ms2, 5, 2, 1, synth.ArrowVariable)
	cfg.Profiles = []string{filepath.Join(dir2, "profiles")}
	if L, err = Load(context.Background(), cfg, discard, nil); err != nil {
		t.Fatal(err)
	}
	if L.Dims.D != 4 || L.Dims.Q != 2 {
		t.Fatalf("tie: dims %+v, want D=4 (tie to the smaller) and Q=2 (9 values of width 2, 9 of width 3: tie to the smaller)", L.Dims)
	}
}

func TestDimsResolution(t *testing.T) {
	k := synth.DefaultKnobs(50)
	k.Invalid = 0.1 // some wrong lengths: the mode is still D
	ms := synth.Random(4, k)
	for _, tc := range []struct {
		name     string
		form     synth.Form
		flagD    int
		wantD    int
		wantErr  error
		wantFrom string
	}{
		{"schema fixes D", synth.ArrowFixed, 0, 16, nil, "D from schema"},
		{"most common length", synth.ArrowVariable, 0, 16, nil, "D from data"},
		{"flag", synth.ArrowVariable, 15, 15, nil, "D from flag"},
		{"flag disagrees with schema", synth.ArrowFixed, 15, 0, failure.Usage, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			pop := ms
			if tc.form == synth.ArrowFixed {
				pop = synth.Random(4, synth.DefaultKnobs(50))
			}
			synth.MustWriteProfiles(t, filepath.Join(dir, "profiles"), pop, 16, 12, 2, tc.form)
			cfg := baseConfig(dir)
			cfg.TraitDim = tc.flagD
			L, err := Load(context.Background(), cfg, discard, nil)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("got %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if L.Dims.D != tc.wantD || L.Dims.Q != 12 || !strings.Contains(L.Dims.Source, tc.wantFrom) {
				t.Fatalf("dims %+v, want D=%d Q=12 (%s)", L.Dims, tc.wantD, tc.wantFrom)
			}
			if tc.flagD == 15 && L.Counts.QuarantinedByReason["trait_wrong_length"] < 40 {
				t.Fatalf("D forced to 15: only %d trait_wrong_length rejects", L.Counts.QuarantinedByReason["trait_wrong_length"])
			}
		})
	}
}
