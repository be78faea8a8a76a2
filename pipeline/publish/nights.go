package publish

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/osmosis/batchmatch/pipeline/failure"
	"github.com/osmosis/batchmatch/pipeline/read"
	"github.com/osmosis/batchmatch/pipeline/store"
)

// A published night read back: what the next night's incremental run,
// its churn figures, the report's history and `explain --partition` read.
// Everything goes through the partition's _SUCCESS: the manifest it names
// and the files it lists, local or on object storage alike.

// PublishedNight is a published partition: its _SUCCESS and manifest.
type PublishedNight struct {
	Name     string // the partition's name (dt=YYYY-MM-DD)
	Loc      string // its directory or URL
	Success  Success
	Manifest *Manifest
}

// Date is the night's date, from its Hive-style name (ok false for
// another name).
func (n *PublishedNight) Date() (time.Time, bool) { return partitionDate(n.Name) }

// partitionDate parses dt=YYYY-MM-DD.
func partitionDate(name string) (time.Time, bool) {
	s, ok := strings.CutPrefix(name, "dt=")
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(time.DateOnly, s)
	return t, err == nil && DefaultPartition(t) == name
}

// DefaultPartitionName is the Hive-style partition name of the date
// asOf written YYYY-MM-DD.
func DefaultPartitionName(asOf string) string { return "dt=" + asOf }

// ListNights returns the names of the partitions named dt=YYYY-MM-DD
// under out that hold a _SUCCESS, oldest first. A local out is listed
// without following links into it.
func ListNights(ctx context.Context, out string) ([]string, error) {
	var names []string
	if store.IsURL(out) {
		keys, err := store.Default().List(ctx, out)
		if err != nil {
			return nil, remoteError(err, "listing "+RedactURL(out))
		}
		for _, k := range keys {
			dir, file, ok := strings.Cut(k, "/")
			if ok && file == SuccessFile {
				if _, ok := partitionDate(dir); ok {
					names = append(names, dir)
				}
			}
		}
	} else {
		entries, err := os.ReadDir(out)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, fsError(err, "listing", out)
		}
		for _, e := range entries {
			// a published partition, intact or not: a damaged one is then
			// refused by its checks with the reason, rather than skipped
			// for an older night as if it had never been published
			if _, ok := partitionDate(e.Name()); ok && e.IsDir() && e.Type()&fs.ModeSymlink == 0 && hasSuccess(filepath.Join(out, e.Name())) {
				names = append(names, e.Name())
			}
		}
	}
	slices.Sort(names) // dt=YYYY-MM-DD sorts by date
	return names, nil
}

// hasSuccess reports whether the directory dir holds a _SUCCESS file (a
// regular file, not a link).
func hasSuccess(dir string) bool {
	fi, err := os.Lstat(filepath.Join(dir, SuccessFile))
	return err == nil && fi.Mode().IsRegular()
}

// PreviousNight returns the latest partition published under out for a
// date before asOf (nil when there is none).
func PreviousNight(ctx context.Context, out string, asOf time.Time) (*PublishedNight, error) {
	names, err := ListNights(ctx, out)
	if err != nil {
		return nil, err
	}
	for k := len(names) - 1; k >= 0; k-- {
		if d, _ := partitionDate(names[k]); d.Before(asOf) {
			return OpenNight(ctx, joinLoc(out, names[k]))
		}
	}
	return nil, nil
}

// joinLoc joins a partition to its root, a directory or a URL.
func joinLoc(root string, elem ...string) string {
	if store.IsURL(root) {
		return store.Join(root, elem...)
	}
	return filepath.Join(append([]string{root}, elem...)...)
}

// readLoc reads a whole file or object.
func readLoc(ctx context.Context, loc string) ([]byte, error) {
	if store.IsURL(loc) {
		b, err := store.Default().ReadFile(ctx, loc)
		if err != nil {
			return nil, remoteError(err, "reading "+RedactURL(loc))
		}
		return b, nil
	}
	b, err := os.ReadFile(loc)
	if err != nil {
		return nil, fsError(err, "reading", loc)
	}
	return b, nil
}

// OpenNight reads the _SUCCESS of the partition at loc (a directory or a
// URL) and the manifest it names.
func OpenNight(ctx context.Context, loc string) (*PublishedNight, error) {
	loc = strings.TrimSuffix(loc, "/")
	name := loc[strings.LastIndex(loc, "/")+1:]
	if !store.IsURL(loc) {
		name = filepath.Base(loc)
	}
	body, err := readLoc(ctx, joinLoc(loc, SuccessFile))
	if err != nil {
		return nil, err
	}
	n := &PublishedNight{Name: name, Loc: loc, Success: ParseSuccess(body)}
	raw, err := readLoc(ctx, joinLoc(loc, n.Success.ManifestName()))
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%w: the manifest of %s: %w", failure.BadData, RedactURL(loc), err)
	}
	n.Manifest = &m
	return n, nil
}

// ErrUntrusted marks a table of a published night that is not what its
// manifest recorded (missing from _SUCCESS, another size or SHA-256, or
// unreadable): an incremental run does not start from such a night.
var ErrUntrusted = errors.New("table not as published")

// Table reads a table of the night whole, checking that _SUCCESS lists it
// and that its size and SHA-256 are the manifest's (a manifest without
// them is not trusted).
func (n *PublishedNight) Table(ctx context.Context, table string) ([]byte, error) {
	t, ok := n.Manifest.Outputs[table]
	if !ok || t.Path == "" {
		return nil, fmt.Errorf("%w: the manifest lists no %s table", ErrUntrusted, table)
	}
	if t.SHA256 == "" {
		return nil, fmt.Errorf("%w: the manifest records no SHA-256 of the %s table (written by an earlier version)", ErrUntrusted, table)
	}
	path := filepath.ToSlash(t.Path)
	if !slices.Contains(n.Success.Files, path) {
		return nil, fmt.Errorf("%w: %s does not list %s", ErrUntrusted, SuccessFile, path)
	}
	b, err := readLoc(ctx, joinLoc(n.Loc, path))
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	if int64(len(b)) != t.Bytes || hex.EncodeToString(sum[:]) != t.SHA256 {
		return nil, fmt.Errorf("%w: %s has %d bytes and SHA-256 %s, the manifest says %d and %s",
			ErrUntrusted, path, len(b), hex.EncodeToString(sum[:8]), t.Bytes, t.SHA256[:min(16, len(t.SHA256))])
	}
	return b, nil
}

// Lists are the matches table of a night by column, sorted by user and
// rank: user u's list is Match[Start[k]:Start[k+1]] for u = User[k].
type Lists struct {
	User  []int64
	Start []int // len(User)+1
	Match []int64
	Score []float32
	index *Index
}

// Of returns the matches and scores of user u, best first (nil when u
// has none).
func (l *Lists) Of(u int64) ([]int64, []float32) {
	k := l.index.Of(u)
	if k < 0 {
		return nil, nil
	}
	return l.Match[l.Start[k]:l.Start[k+1]], l.Score[l.Start[k]:l.Start[k+1]]
}

// State is the state table by column, sorted by user id.
type State struct {
	User   []int64
	Digest []read.Digest
	index  *Index
}

// DigestOf returns user u's digest.
func (s *State) DigestOf(u int64) (read.Digest, bool) {
	k := s.index.Of(u)
	if k < 0 {
		return read.Digest{}, false
	}
	return s.Digest[k], true
}

// ParseLists reads a matches table (the bytes of its file): user_id,
// rank, match_id and score, checked to be sorted by user and rank with
// ranks 1, 2, … and at most k a user.
func ParseLists(b []byte, k int) (*Lists, error) {
	f, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, fmt.Errorf("%w: the matches table: %w", ErrUntrusted, err)
	}
	user, err := int64Column(f, "user_id")
	if err != nil {
		return nil, err
	}
	rank, err := int32Column(f, "rank")
	if err != nil {
		return nil, err
	}
	match, err := int64Column(f, "match_id")
	if err != nil {
		return nil, err
	}
	score, err := float32Column(f, "score")
	if err != nil {
		return nil, err
	}
	n := len(user)
	if len(rank) != n || len(match) != n || len(score) != n {
		return nil, fmt.Errorf("%w: the matches table's columns differ in length", ErrUntrusted)
	}
	l := &Lists{Match: match, Score: score}
	for r := range n {
		if r == 0 || user[r] != user[r-1] {
			if r > 0 && user[r] < user[r-1] {
				return nil, fmt.Errorf("%w: the matches table is not sorted by user_id", ErrUntrusted)
			}
			l.User = append(l.User, user[r])
			l.Start = append(l.Start, r)
		}
		if want := int32(r - l.Start[len(l.Start)-1] + 1); rank[r] != want || int(want) > k {
			return nil, fmt.Errorf("%w: user %d has rank %d at place %d (K = %d)", ErrUntrusted, user[r], rank[r], want, k)
		}
	}
	l.Start = append(l.Start, n)
	l.index = NewIndex(l.User)
	return l, nil
}

// ParseState reads a state table (the bytes of its file), checked to be
// sorted by user id without repeats.
func ParseState(b []byte) (*State, error) {
	f, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, fmt.Errorf("%w: the state table: %w", ErrUntrusted, err)
	}
	user, err := int64Column(f, "user_id")
	if err != nil {
		return nil, err
	}
	digests, err := digestColumn(f, "digest")
	if err != nil {
		return nil, err
	}
	if len(digests) != len(user) {
		return nil, fmt.Errorf("%w: the state table's columns differ in length", ErrUntrusted)
	}
	for i := 1; i < len(user); i++ {
		if user[i] <= user[i-1] {
			return nil, fmt.Errorf("%w: the state table is not sorted by user_id", ErrUntrusted)
		}
	}
	return &State{User: user, Digest: digests, index: NewIndex(user)}, nil
}

// ParseSoulmates reads a soulmates table (the bytes of its file).
func ParseSoulmates(b []byte) ([]SoulmateRow, error) {
	rows, err := parquet.Read[SoulmateRow](bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, fmt.Errorf("%w: the soulmates table: %w", ErrUntrusted, err)
	}
	return rows, nil
}

// column returns the leaf column of f named name, required.
func column(f *parquet.File, name string) (int, error) {
	leaf, ok := f.Schema().Lookup(name)
	if !ok {
		return 0, fmt.Errorf("%w: no column %s", ErrUntrusted, name)
	}
	return leaf.ColumnIndex, nil
}

// readPages calls each with the values of every page of column name, in
// row group and page order.
func readPages(f *parquet.File, name string, each func(parquet.Page) error) error {
	c, err := column(f, name)
	if err != nil {
		return err
	}
	for _, rg := range f.RowGroups() {
		pages := rg.ColumnChunks()[c].Pages()
		for {
			p, err := pages.ReadPage()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				pages.Close()
				return fmt.Errorf("%w: column %s: %w", ErrUntrusted, name, err)
			}
			if p.NumNulls() > 0 {
				parquet.Release(p)
				pages.Close()
				return fmt.Errorf("%w: column %s has nulls", ErrUntrusted, name)
			}
			err = each(p)
			parquet.Release(p)
			if err != nil {
				pages.Close()
				return err
			}
		}
		pages.Close()
	}
	return nil
}

func int64Column(f *parquet.File, name string) ([]int64, error) {
	out := make([]int64, 0, f.NumRows())
	err := readPages(f, name, func(p parquet.Page) (err error) {
		r, ok := p.Values().(parquet.Int64Reader)
		if !ok {
			return fmt.Errorf("%w: column %s is not int64", ErrUntrusted, name)
		}
		out, err = appendPage(out, int(p.NumValues()), 1, r.ReadInt64s)
		return err
	})
	return out, err
}

func int32Column(f *parquet.File, name string) ([]int32, error) {
	out := make([]int32, 0, f.NumRows())
	err := readPages(f, name, func(p parquet.Page) (err error) {
		r, ok := p.Values().(parquet.Int32Reader)
		if !ok {
			return fmt.Errorf("%w: column %s is not int32", ErrUntrusted, name)
		}
		out, err = appendPage(out, int(p.NumValues()), 1, r.ReadInt32s)
		return err
	})
	return out, err
}

func float32Column(f *parquet.File, name string) ([]float32, error) {
	out := make([]float32, 0, f.NumRows())
	err := readPages(f, name, func(p parquet.Page) (err error) {
		r, ok := p.Values().(parquet.FloatReader)
		if !ok {
			return fmt.Errorf("%w: column %s is not float", ErrUntrusted, name)
		}
		out, err = appendPage(out, int(p.NumValues()), 1, r.ReadFloats)
		return err
	})
	return out, err
}

// digestColumn reads a fixed_len_byte_array(16) column (parquet-go
// decodes 16-byte values as big-endian 128-bit ones).
func digestColumn(f *parquet.File, name string) ([]read.Digest, error) {
	out := make([]read.Digest, 0, f.NumRows())
	err := readPages(f, name, func(p parquet.Page) (err error) {
		r, ok := p.Values().(interface {
			ReadBE128s(values [][16]byte) (int, error)
		})
		if !ok {
			return fmt.Errorf("%w: column %s is not fixed_len_byte_array(16)", ErrUntrusted, name)
		}
		var buf [][16]byte
		buf, err = appendPage(buf, int(p.NumValues()), 1, r.ReadBE128s)
		for _, d := range buf {
			out = append(out, d)
		}
		return err
	})
	return out, err
}

// appendPage appends a page's count values of size elements each to out,
// calling read (which returns values, not elements, and may return fewer
// than asked, and io.EOF with the last) until they are all there.
func appendPage[T any](out []T, count, size int, read func(dst []T) (int, error)) ([]T, error) {
	lo := len(out)
	out = slices.Grow(out, count*size)[:lo+count*size]
	got := 0
	for got < count {
		n, err := read(out[lo+got*size:])
		got += n
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return out, fmt.Errorf("%w: %w", ErrUntrusted, err)
		}
		if n == 0 {
			break
		}
	}
	if got != count {
		return out, fmt.Errorf("%w: a page holds %d values, %d read", ErrUntrusted, count, got)
	}
	return out, nil
}
