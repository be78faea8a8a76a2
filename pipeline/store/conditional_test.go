package store_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/osmosis/batchmatch/pipeline/store"
	"github.com/osmosis/batchmatch/pipeline/store/storetest"
)

// TestConditionalCreateRace: writers racing to create one object with a
// conditional create (what decides which publisher's _SUCCESS stands):
// exactly one wins every round and the object holds its bytes; the others
// get ErrExists. 200 rounds of 2 to 8 writers on file://, each with its
// own Store (its own bucket handle, as separate processes have: gocloud's
// fileblob checks and then renames, so that two writers could both win),
// and on mem:// (in-process: one Store, one bucket).
func TestConditionalCreateRace(t *testing.T) {
	dir := t.TempDir()
	for _, root := range []string{"file://" + dir, "mem://create-race"} {
		scheme, _, _ := strings.Cut(root, "://")
		t.Run(scheme, func(t *testing.T) {
			ctx := context.Background()
			shared := store.New(nil)
			defer shared.Close()
			storeOf := func() (*store.Store, func()) {
				if scheme == "mem" {
					return shared, func() {}
				}
				s := store.New(nil)
				return s, func() { s.Close() }
			}
			for round := range 200 {
				writers := 2 + round%7
				loc := store.Join(root, fmt.Sprintf("r%03d", round), "_SUCCESS")
				errs := make([]error, writers)
				var start, done sync.WaitGroup
				start.Add(1)
				for w := range writers {
					done.Add(1)
					go func() {
						defer done.Done()
						s, release := storeOf()
						defer release()
						start.Wait()
						errs[w] = s.WriteFile(ctx, loc, []byte(fmt.Sprintf("writer %d\n", w)), true)
					}()
				}
				start.Done()
				done.Wait()
				winner := -1
				for w, err := range errs {
					switch {
					case err == nil && winner >= 0:
						t.Fatalf("round %d: writers %d and %d both created %s", round, winner, w, loc)
					case err == nil:
						winner = w
					case !errors.Is(err, store.ErrExists):
						t.Fatalf("round %d: writer %d: %v, want ErrExists", round, w, err)
					}
				}
				if winner < 0 {
					t.Fatalf("round %d: nobody created %s", round, loc)
				}
				s, closeStore := storeOf()
				got, err := s.ReadFile(ctx, loc)
				closeStore()
				if err != nil || string(got) != fmt.Sprintf("writer %d\n", winner) {
					t.Fatalf("round %d: %s holds %q (%v), the winner was writer %d", round, loc, got, err, winner)
				}
			}
		})
	}
}

// TestConditionalReplace: a replace conditional on the version read
// (WriteIf with it) succeeds while the object is that version and fails
// with ErrExists once another writer replaced it, on every backend; of
// writers racing to replace the same version exactly one wins.
func TestConditionalReplace(t *testing.T) {
	fake := storetest.NewFakeS3(t, "bm-cas")
	gcs := storetest.NewFakeGCS(t, "bm-cas-gcs")
	dir := t.TempDir()
	for _, b := range []struct{ name, root string }{
		{"mem", "mem://test-cas/run"},
		{"file", "file://" + dir + "/run"},
		{"s3", store.Join(fake.URL, "run")},
		{"gs", store.Join(gcs, "run")},
	} {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			s := fastRetry(store.New(nil))
			defer s.Close()
			loc := store.Join(b.root, "dt=2026-11-30", "_SUCCESS")
			if err := s.WriteIf(ctx, loc, []byte("v1\n"), nil); err != nil {
				t.Fatal(err)
			}
			_, v1, err := s.ReadVersion(ctx, loc)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.WriteIf(ctx, loc, []byte("v2\n"), &v1); err != nil {
				t.Fatalf("replace of the version read: %v", err)
			}
			if err := s.WriteIf(ctx, loc, []byte("v3\n"), &v1); !errors.Is(err, store.ErrExists) {
				t.Fatalf("replace of a version that was replaced: %v, want ErrExists", err)
			}
			if err := s.WriteIf(ctx, store.Join(b.root, "missing"), []byte("x"), &v1); !errors.Is(err, store.ErrExists) {
				t.Fatalf("replace of an object that is not there: %v, want ErrExists", err)
			}
			got, v2, err := s.ReadVersion(ctx, loc)
			if err != nil || string(got) != "v2\n" {
				t.Fatalf("after the refused replace: %q, %v", got, err)
			}
			const writers = 4
			errs := make([]error, writers)
			var wg sync.WaitGroup
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs[w] = s.WriteIf(ctx, loc, []byte(fmt.Sprintf("w%d\n", w)), &v2)
				}()
			}
			wg.Wait()
			won := 0
			for _, err := range errs {
				if err == nil {
					won++
				} else if !errors.Is(err, store.ErrExists) {
					t.Fatal(err)
				}
			}
			if won != 1 {
				t.Fatalf("%d of %d writers replacing one version won, want 1", won, writers)
			}
			if s.Retries() != 0 {
				t.Fatalf("%d retries: a refused condition was retried", s.Retries())
			}
		})
	}
}

// TestLostAnswer: a conditional create whose request the store carried out
// but whose answer was lost (a 503 after the work) is retried and refused:
// the caller must read the object back to learn that its own write won
// (pushPartition does, by the attempt id).
func TestLostAnswer(t *testing.T) {
	fake := storetest.NewFakeS3(t, "bm-lost")
	s := fastRetry(store.New(nil))
	defer s.Close()
	ctx := context.Background()
	loc := store.Join(fake.URL, "dt=2026-11-30", "_SUCCESS")
	var once sync.Once
	fake.SetPlan(func(_ int64, r *http.Request) storetest.Fault {
		f := storetest.Pass
		if r.Method == http.MethodPut {
			once.Do(func() { f = storetest.LoseAnswer })
		}
		return f
	})
	defer fake.SetPlan(nil)
	err := s.WriteIf(ctx, loc, []byte("mine\n"), nil)
	if !errors.Is(err, store.ErrExists) {
		t.Fatalf("retried create after a lost answer: %v, want ErrExists", err)
	}
	if got, err := s.ReadFile(ctx, loc); err != nil || string(got) != "mine\n" {
		t.Fatalf("the object is %q (%v): the first try's write", got, err)
	}
}

// TestTrickle: a store that answers but sends the body a byte at a time
// is abandoned like one that never answers (each attempt must move
// Retry.Floor in every Idle window once the answer began), so the retry
// budget bounds the operation: it fails with ErrStalled long before the
// trickle would end. Before the floor every byte reset the idle deadline
// and the read took as long as the trickle (here 2 KiB at 20 ms a byte:
// 40 s an attempt; the context's deadline only detects that hang).
func TestTrickle(t *testing.T) {
	fake := storetest.NewFakeS3(t, "bm-trickle")
	s := store.New(nil)
	defer s.Close()
	s.Retry.Attempts, s.Retry.Base, s.Retry.Max, s.Retry.Idle = 2, time.Millisecond, 2*time.Millisecond, 300*time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	obj := store.Join(fake.URL, "trickle", "_SUCCESS")
	if err := s.WriteFile(ctx, obj, randBytes(2048, 9), false); err != nil {
		t.Fatal(err)
	}
	fake.SetPlan(func(_ int64, r *http.Request) storetest.Fault {
		if r.Method == http.MethodGet {
			return storetest.Trickle
		}
		return storetest.Pass
	})
	defer fake.SetPlan(nil)
	for _, op := range []struct {
		name string
		do   func() error
	}{
		{"read", func() error { _, err := s.ReadFile(ctx, obj); return err }},
		{"download", func() error { _, err := s.Download(ctx, obj, &strings.Builder{}); return err }},
	} {
		err := op.do()
		if !errors.Is(err, store.ErrStalled) || !errors.Is(err, store.ErrUnavailable) || ctx.Err() != nil {
			t.Fatalf("%s of a trickling object: %v (context: %v), want ErrUnavailable (stalled) within the retry budget", op.name, err, ctx.Err())
		}
	}
}

// TestCheckEnv: $BATCHMATCH_STORE_IDLE_TIMEOUT must be a positive Go
// duration; anything else is reported (a usage error for the commands),
// never silently replaced by the default.
func TestCheckEnv(t *testing.T) {
	for _, tc := range []struct {
		v  string
		ok bool
	}{{"", true}, {"10s", true}, {"250ms", true}, {"banana", false}, {"0", false}, {"-1s", false}, {"30", false}} {
		t.Setenv(store.IdleEnv, tc.v)
		err := store.CheckEnv()
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, store.ErrSetting)) {
			t.Errorf("%s=%q: %v, want ok %v", store.IdleEnv, tc.v, err, tc.ok)
		}
	}
}

// TestMissingBucket: a bucket that does not exist is ErrNoBucket, not a
// missing object (a partition that "is not published"), and is not
// retried.
func TestMissingBucket(t *testing.T) {
	fake := storetest.NewFakeS3(t, "bm-nobucket")
	ctx := context.Background()
	obj := store.Join(fake.URL, "x", "_SUCCESS")
	for _, op := range []struct {
		name string
		do   func(s *store.Store) error
	}{
		{"read", func(s *store.Store) error { _, err := s.ReadFile(ctx, obj); return err }},
		{"list", func(s *store.Store) error { _, err := s.List(ctx, store.Join(fake.URL, "x")); return err }},
		{"write", func(s *store.Store) error { return s.WriteFile(ctx, obj, []byte("y"), false) }},
		{"exists", func(s *store.Store) error { _, err := s.Exists(ctx, obj); return err }},
	} {
		t.Run(op.name, func(t *testing.T) {
			s := fastRetry(store.New(nil))
			defer s.Close()
			fake.SetPlan(func(int64, *http.Request) storetest.Fault { return storetest.NoBucket })
			defer fake.SetPlan(nil)
			err := op.do(s)
			if !errors.Is(err, store.ErrNoBucket) {
				t.Fatalf("%v, want ErrNoBucket", err)
			}
			if s.Retries() != 0 {
				t.Fatalf("%d retries of a missing bucket", s.Retries())
			}
		})
	}
}
