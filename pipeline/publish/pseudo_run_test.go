package publish_test

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/osmosis/batchmatch/pipeline"
	"github.com/osmosis/batchmatch/pipeline/failure"
	"github.com/osmosis/batchmatch/pipeline/internal/runtest"
	"github.com/osmosis/batchmatch/pipeline/publish"
	"github.com/osmosis/batchmatch/pipeline/synth"
)

// refPseudonym is the documented mapping, computed independently.
func refPseudonym(key []byte, id int64) int64 {
	m := hmac.New(sha256.New, key)
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(id))
	m.Write(b[:])
	return int64(binary.BigEndian.Uint64(m.Sum(nil)) >> 1)
}

func TestPseudonymize(t *testing.T) {
	dir := t.TempDir()
	k := synth.DefaultKnobs(250)
	k.Invalid = 0.05
	synth.MustWriteProfiles(t, filepath.Join(dir, "profiles"), synth.Random(14, k), 16, 12, 2, synth.ArrowVariable)
	key := []byte("0123456789abcdef-a-test-key")
	keyFile := filepath.Join(dir, "key")
	os.WriteFile(keyFile, key, 0o600)

	plainCfg := runtest.BaseConfig(dir)
	plain, err := pipeline.Run(context.Background(), plainCfg, runtest.Quiet)
	if err != nil {
		t.Fatal(err)
	}
	run := func(name string) *pipeline.Result {
		cfg := runtest.BaseConfig(dir)
		cfg.Out, cfg.PseudonymKey = filepath.Join(dir, name), keyFile
		res, err := pipeline.Run(context.Background(), cfg, runtest.Quiet)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	pz := run("pseudo")
	pm := func(id int64) int64 { return refPseudonym(key, id) }

	// matches: the same rows with every id mapped, sorted by the new user_id
	want := runtest.ReadMatches(t, publish.TablePath(plain.Published, "matches"), nil)
	for i := range want {
		want[i].UserID, want[i].MatchID = pm(want[i].UserID), pm(want[i].MatchID)
	}
	slices.SortStableFunc(want, func(a, b publish.MatchRow) int {
		if a.UserID != b.UserID {
			return cmp.Compare(a.UserID, b.UserID)
		}
		return cmp.Compare(a.Rank, b.Rank)
	})
	got := runtest.ReadMatches(t, publish.TablePath(pz.Published, "matches"), nil)
	if len(got) == 0 || len(got) != len(want) {
		t.Fatalf("%d rows, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.UserID != w.UserID || g.MatchID != w.MatchID || g.Rank != w.Rank || g.Score != w.Score || g.Mutual != w.Mutual {
			t.Fatalf("row %d: %+v, want %+v", i, g, w)
		}
	}
	// soulmates: mapped, user_a < user_b with ranks following, sorted by user_a
	ws := runtest.ReadSoulmates(t, publish.TablePath(plain.Published, "soulmates"), nil)
	for i, s := range ws {
		a, b, ra, rb := pm(s.UserA), pm(s.UserB), s.RankA, s.RankB
		if a > b {
			a, b, ra, rb = b, a, rb, ra
		}
		ws[i] = publish.SoulmateRow{UserA: a, UserB: b, Score: s.Score, RankA: ra, RankB: rb}
	}
	slices.SortFunc(ws, func(a, b publish.SoulmateRow) int { return cmp.Compare(a.UserA, b.UserA) })
	if gs := runtest.ReadSoulmates(t, publish.TablePath(pz.Published, "soulmates"), nil); !slices.Equal(gs, ws) || len(gs) == 0 {
		t.Fatalf("soulmates:\n got %v\nwant %v", gs, ws)
	}
	// rejects: same rows, mapped ids
	wr, gr := runtest.ReadRejects(t, publish.TablePath(plain.Published, "rejects"), nil), runtest.ReadRejects(t, publish.TablePath(pz.Published, "rejects"), nil)
	if len(gr) == 0 || len(gr) != len(wr) {
		t.Fatalf("%d rejects, want %d", len(gr), len(wr))
	}
	for i := range gr {
		if (wr[i].UserID == nil) != (gr[i].UserID == nil) || (wr[i].UserID != nil && *gr[i].UserID != pm(*wr[i].UserID)) {
			t.Fatalf("reject %d: %+v vs %+v", i, gr[i], wr[i])
		}
	}
	// the key appears nowhere; a key id does; the same key gives the same bytes
	if pz.Manifest.PseudonymKeyID == "" || pz.Manifest.ConfigHash == plain.Manifest.ConfigHash {
		t.Errorf("manifest: key id %q, config hash unchanged", pz.Manifest.PseudonymKeyID)
	}
	filepath.Walk(filepath.Join(dir, "pseudo"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			if b, _ := os.ReadFile(p); bytes.Contains(b, key) || bytes.Contains(b, []byte(keyFile)) {
				t.Errorf("%s contains the key or its path", p)
			}
		}
		return nil
	})
	again := run("pseudo-again")
	for _, tb := range []string{"matches", "soulmates", "rejects"} {
		a, _ := os.ReadFile(publish.TablePath(pz.Published, tb))
		b, _ := os.ReadFile(publish.TablePath(again.Published, tb))
		if !bytes.Equal(a, b) {
			t.Errorf("%s: same key, different bytes", tb)
		}
	}
	// a short key is a usage error
	os.WriteFile(keyFile, []byte("short"), 0o600)
	cfg := runtest.BaseConfig(dir)
	cfg.Out, cfg.PseudonymKey = filepath.Join(dir, "bad"), keyFile
	if _, err := pipeline.Run(context.Background(), cfg, runtest.Quiet); !errors.Is(err, failure.Usage) {
		t.Errorf("short key: %v", err)
	}
}
