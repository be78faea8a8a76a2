package read

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/osmosis/batchmatch/pipeline/failure"
	"github.com/osmosis/batchmatch/pipeline/synth"
)

// TestResolveInputs: what an input path expands to, for every file-system
// layout a delivery can take: links to files and folders are followed, a
// file reached twice is read once, and nothing that could be an input is
// skipped silently (dangling links, loops, FIFOs fail naming the path).
func TestResolveInputs(t *testing.T) {
	type tree func(t *testing.T, root string) (spec []string)
	touch := func(t *testing.T, p string) {
		t.Helper()
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := func(t *testing.T, target, p string) {
		t.Helper()
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	fifo := func(t *testing.T, p string) {
		t.Helper()
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := syscall.Mkfifo(p, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name    string
		tree    tree
		want    []string // relative to root
		kind    error
		mention string
	}{
		{"directory", func(t *testing.T, r string) []string {
			touch(t, r+"/in/a.parquet")
			touch(t, r+"/in/sub/b.parquet")
			touch(t, r+"/in/_tmp/c.parquet")
			touch(t, r+"/in/.hidden.parquet")
			touch(t, r+"/in/notes.txt")
			return []string{r + "/in"}
		}, []string{"in/a.parquet", "in/sub/b.parquet"}, nil, ""},
		{"link to a file inside", func(t *testing.T, r string) []string {
			touch(t, r+"/elsewhere/x.parquet")
			touch(t, r+"/in/a.parquet")
			link(t, r+"/elsewhere/x.parquet", r+"/in/x.parquet")
			return []string{r + "/in"}
		}, []string{"in/a.parquet", "in/x.parquet"}, nil, ""},
		{"link to a folder inside", func(t *testing.T, r string) []string {
			touch(t, r+"/elsewhere/x.parquet")
			touch(t, r+"/elsewhere/y.parquet")
			touch(t, r+"/in/a.parquet")
			link(t, r+"/elsewhere", r+"/in/more")
			return []string{r + "/in"}
		}, []string{"in/a.parquet", "in/more/x.parquet", "in/more/y.parquet"}, nil, ""},
		{"the root is a link", func(t *testing.T, r string) []string {
			touch(t, r+"/real/a.parquet")
			link(t, r+"/real", r+"/in")
			return []string{r + "/in"}
		}, []string{"in/a.parquet"}, nil, ""},
		{"a file reached twice is read once", func(t *testing.T, r string) []string {
			touch(t, r+"/in/a.parquet")
			link(t, "a.parquet", r+"/in/b.parquet")
			return []string{r + "/in", r + "/in/a.parquet"}
		}, []string{"in/a.parquet"}, nil, ""},
		{"the same folder through two links", func(t *testing.T, r string) []string {
			touch(t, r+"/shared/a.parquet")
			link(t, r+"/shared", r+"/in/one")
			link(t, r+"/shared", r+"/in/two")
			return []string{r + "/in"}
		}, []string{"in/one/a.parquet"}, nil, ""},
		{"dangling link", func(t *testing.T, r string) []string {
			touch(t, r+"/in/a.parquet")
			link(t, r+"/gone.parquet", r+"/in/b.parquet")
			return []string{r + "/in"}
		}, nil, failure.NoInput, "does not exist"},
		{"dangling link to a folder", func(t *testing.T, r string) []string {
			touch(t, r+"/in/a.parquet")
			link(t, r+"/gone", r+"/in/more")
			return []string{r + "/in"}
		}, nil, failure.NoInput, "in/more"},
		{"link loop", func(t *testing.T, r string) []string {
			touch(t, r+"/in/a.parquet")
			link(t, "..", r+"/in/sub/up")
			return []string{r + "/in"}
		}, nil, failure.NoInput, "loop"},
		{"self link", func(t *testing.T, r string) []string {
			touch(t, r+"/in/a.parquet")
			link(t, "self.parquet", r+"/in/self.parquet")
			return []string{r + "/in"}
		}, nil, failure.NoInput, "self.parquet"},
		{"FIFO given directly", func(t *testing.T, r string) []string {
			fifo(t, r+"/pipe.parquet")
			return []string{r + "/pipe.parquet"}
		}, nil, failure.NoInput, "not a regular file"},
		{"FIFO in a folder", func(t *testing.T, r string) []string {
			touch(t, r+"/in/a.parquet")
			fifo(t, r+"/in/pipe.parquet")
			return []string{r + "/in"}
		}, nil, failure.NoInput, "named pipe"},
		{"FIFO not named .parquet is not an input", func(t *testing.T, r string) []string {
			touch(t, r+"/in/a.parquet")
			fifo(t, r+"/in/control")
			return []string{r + "/in"}
		}, []string{"in/a.parquet"}, nil, ""},
		{"link to a FIFO", func(t *testing.T, r string) []string {
			fifo(t, r+"/pipe")
			touch(t, r+"/in/a.parquet")
			link(t, r+"/pipe", r+"/in/b.parquet")
			return []string{r + "/in"}
		}, nil, failure.NoInput, "not a regular file"},
		{"device", func(t *testing.T, r string) []string {
			return []string{"/dev/null"}
		}, nil, failure.NoInput, "device"},
		{"literal name with brackets", func(t *testing.T, r string) []string {
			touch(t, r+"/in/part[1].parquet")
			touch(t, r+"/in/part1.parquet")
			return []string{r + "/in/part[1].parquet"}
		}, []string{"in/part[1].parquet"}, nil, ""},
		{"literal name with a comma", func(t *testing.T, r string) []string {
			touch(t, r+"/in/a,b.parquet")
			return []string{r + "/in/a,b.parquet"}
		}, []string{"in/a,b.parquet"}, nil, ""},
		{"comma-separated list", func(t *testing.T, r string) []string {
			touch(t, r+"/in/a.parquet")
			touch(t, r+"/in/b.parquet")
			return []string{r + "/in/a.parquet," + r + "/in/b.parquet"}
		}, []string{"in/a.parquet", "in/b.parquet"}, nil, ""},
		{"glob", func(t *testing.T, r string) []string {
			touch(t, r+"/in/a.parquet")
			touch(t, r+"/in/b.parquet")
			touch(t, r+"/in/c.txt")
			return []string{r + "/in/*.parquet"}
		}, []string{"in/a.parquet", "in/b.parquet"}, nil, ""},
		{"escaped glob characters", func(t *testing.T, r string) []string {
			touch(t, r+"/in/x[1]/a.parquet")
			touch(t, r+"/in/x1/b.parquet")
			return []string{r + `/in/x\[1\]/*.parquet`}
		}, []string{"in/x[1]/a.parquet"}, nil, ""},
		{"links reaching the same folders many ways are walked once", func(t *testing.T, r string) []string {
			// L0..L24, each holding two links to the next: 2^24 paths to one
			// shard (the walk took exponential time)
			for i := 0; i < 24; i++ {
				os.MkdirAll(filepath.Join(r, "L"+strconv.Itoa(i)), 0o755)
				link(t, filepath.Join(r, "L"+strconv.Itoa(i+1)), filepath.Join(r, "L"+strconv.Itoa(i), "a"))
				link(t, filepath.Join(r, "L"+strconv.Itoa(i+1)), filepath.Join(r, "L"+strconv.Itoa(i), "b"))
			}
			touch(t, r+"/L24/x.parquet")
			return []string{r + "/L0"}
		}, []string{"L0/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/x.parquet"}, nil, ""},
		{"glob skips hidden and staging names", func(t *testing.T, r string) []string {
			touch(t, r+"/in/part-0.parquet")
			touch(t, r+"/in/.part-1.parquet")
			touch(t, r+"/in/_SUCCESS")
			touch(t, r+"/in/_temporary/0/part-2.parquet")
			return []string{r + "/in/*"}
		}, []string{"in/part-0.parquet"}, nil, ""},
		{"glob naming hidden files reads them", func(t *testing.T, r string) []string {
			touch(t, r+"/in/part-0.parquet")
			touch(t, r+"/in/.part-1.parquet")
			return []string{r + "/in/.part*"}
		}, []string{"in/.part-1.parquet"}, nil, ""},
		{"Parquet files without the extension are read", func(t *testing.T, r string) []string {
			os.MkdirAll(r+"/in", 0o755)
			os.WriteFile(r+"/in/000000_0", []byte("PAR1 a Hive-style shard PAR1"), 0o644)
			touch(t, r+"/in/README.txt")
			touch(t, r+"/in/a.parquet")
			return []string{r + "/in"}
		}, []string{"in/000000_0", "in/a.parquet"}, nil, ""},
		{"glob matching nothing", func(t *testing.T, r string) []string {
			return []string{r + "/in/*.parquet"}
		}, nil, failure.NoInput, "matches no file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			spec := c.tree(t, root)
			done := make(chan struct{})
			var got []string
			var err error
			go func() { // a FIFO that blocks must fail the test, not hang it
				defer close(done)
				got, err = ResolveInputs(context.Background(), "profiles", spec)
			}()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("resolveInputs blocked")
			}
			if c.kind != nil {
				if !errors.Is(err, c.kind) || !strings.Contains(err.Error(), c.mention) {
					t.Fatalf("got %v (%v), want %v mentioning %q", err, got, c.kind, c.mention)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for i := range got {
				got[i], _ = filepath.Rel(root, got[i])
			}
			if !slices.Equal(got, c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
		})
	}
}

func TestSplitURLs(t *testing.T) {
	for in, want := range map[string][]string{
		"s3://b/a.parquet":                       {"s3://b/a.parquet"},
		"s3://b/a.parquet,s3://b/c.parquet":      {"s3://b/a.parquet", "s3://b/c.parquet"},
		"s3://b/x,y.parquet":                     {"s3://b/x,y.parquet"},
		"gs://b/p,file:///d/q.parquet,mem://m/r": {"gs://b/p", "file:///d/q.parquet", "mem://m/r"},
	} {
		if got := splitURLs(in); !slices.Equal(got, want) {
			t.Errorf("splitURLs(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestHashIsOfWhatWasRead: the manifest's SHA-256 and size describe the
// bytes the decoder read, even when another file is renamed over the
// input's path during the run.
func TestHashIsOfWhatWasRead(t *testing.T) {
	dir := t.TempDir()
	k := synth.DefaultKnobs(30)
	p := synth.MustWriteProfiles(t, filepath.Join(dir, "a"), synth.Random(1, k), k.D, k.Q, 1, synth.ArrowFixed)[0]
	other := synth.MustWriteProfiles(t, filepath.Join(dir, "b"), synth.Random(2, synth.DefaultKnobs(80)), k.D, k.Q, 1, synth.ArrowFixed)[0]
	orig, _ := os.ReadFile(p)
	pf, err := openParquet(context.Background(), p, memory.NewGoAllocator())
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	if err := os.Rename(other, p); err != nil { // the input is replaced mid-run
		t.Fatal(err)
	}
	sum, err := pf.sha256(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(orig)
	if sum != hex.EncodeToString(want[:]) || pf.size != int64(len(orig)) {
		t.Fatalf("hash %s size %d; the file read has %x, %d bytes", sum, pf.size, want, len(orig))
	}
}

// TestObjectReplacedWhileRead: an input given as a URL (file:// here; S3
// and GCS pin the version the same way, pipeline/store) that is replaced
// while the job reads it fails with failure.IO (retry) naming it, instead of
// decoding the new object's rows under the old one's hash.
func TestObjectReplacedWhileRead(t *testing.T) {
	dir := t.TempDir()
	k := synth.DefaultKnobs(30)
	p := synth.MustWriteProfiles(t, filepath.Join(dir, "a"), synth.Random(1, k), k.D, k.Q, 1, synth.ArrowFixed)[0]
	other := synth.MustWriteProfiles(t, filepath.Join(dir, "b"), synth.Random(2, k), k.D, k.Q, 1, synth.ArrowFixed)[0]
	pf, err := openParquet(context.Background(), "file://"+p, memory.NewGoAllocator())
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	later := time.Now().Add(time.Hour)
	os.Chtimes(other, later, later) // a different version even where sizes agree
	if err := os.Rename(other, p); err != nil {
		t.Fatal(err)
	}
	_, err = pf.sha256(context.Background())
	if !errors.Is(err, failure.IO) || !strings.Contains(err.Error(), "changed") || !strings.Contains(err.Error(), p) {
		t.Fatalf("got %v, want failure.IO: the object changed", err)
	}
}

// TestInputPermissionDenied: an unreadable input is exit 77's kind (a retry
// cannot help), naming the file. Root reads everything, so the test drops
// to an unprivileged user's view with a path error, as the OS reports it.
func TestInputPermissionDenied(t *testing.T) {
	err := &os.PathError{Op: "open", Path: "/data/shard.parquet", Err: syscall.EACCES}
	for _, c := range []struct {
		fallback, want error
	}{{failure.NoInput, failure.Permission}, {failure.IO, failure.Permission}} {
		if got := failure.OSKind(err, c.fallback); got != c.want {
			t.Errorf("failure.OSKind(EACCES, %v) = %v, want %v", c.fallback, got, c.want)
		}
	}
	for errno, want := range map[syscall.Errno]error{syscall.EROFS: failure.Permission, syscall.EMFILE: failure.System, syscall.ENFILE: failure.System, syscall.EIO: failure.IO, syscall.ENOSPC: failure.IO} {
		if got := failure.OSKind(&os.PathError{Op: "open", Path: "x", Err: errno}, failure.IO); got != want {
			t.Errorf("failure.OSKind(%v) = %v, want %v", errno, got, want)
		}
	}
	if os.Geteuid() != 0 {
		dir := t.TempDir()
		p := synth.MustWriteProfiles(t, filepath.Join(dir, "profiles"), synth.Random(1, synth.DefaultKnobs(10)), 16, 12, 1, synth.ArrowFixed)[0]
		os.Chmod(p, 0)
		_, err := Load(context.Background(), baseConfig(dir), discard, nil)
		if !errors.Is(err, failure.Permission) || !strings.Contains(err.Error(), p) {
			t.Fatalf("unreadable shard: %v, want failure.Permission naming it", err)
		}
	}
}
