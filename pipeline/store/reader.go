package store

import (
	"context"
	"errors"
	"fmt"
	"io"

	"gocloud.dev/blob"
)

// Reader reads one object by ranges: an io.ReaderAt (and io.ReadSeeker)
// for Parquet readers, which read the footer and then each column chunk
// they need with one ranged GET. Every ReadAt is retried on transient
// errors, and a body that ends before its range is read again from where it
// stopped. Safe for concurrent ReadAt calls; Read and Seek share one offset.
type Reader struct {
	s    *Store
	ctx  context.Context
	b    *blob.Bucket
	key  string
	loc  string
	size int64
	off  int64
}

// Open returns a Reader of the object at loc; its size is read once, here.
// ctx bounds every later read.
func (s *Store) Open(ctx context.Context, loc string) (*Reader, error) {
	b, key, err := s.split(ctx, loc)
	if err != nil {
		return nil, err
	}
	size, err := s.Size(ctx, loc)
	if err != nil {
		return nil, err
	}
	return &Reader{s: s, ctx: ctx, b: b, key: key, loc: loc, size: size}, nil
}

// Size is the object's size in bytes.
func (r *Reader) Size() int64 { return r.size }

// ReadAt reads len(p) bytes at off (fewer, with io.EOF, at the end of the object).
func (r *Reader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read %s: negative offset %d", redact(r.loc), off)
	}
	if off >= r.size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	want := p
	if rest := r.size - off; int64(len(want)) > rest {
		want = want[:rest]
	}
	done := 0
	err := r.s.doResumable(r.ctx, "read", r.loc, func() int64 { return int64(done) }, func(ctx context.Context, touch func()) error {
		rr, err := r.b.NewRangeReader(ctx, r.key, off+int64(done), int64(len(want)-done), nil)
		if err != nil {
			return err
		}
		defer rr.Close()
		touch()
		n, err := io.ReadFull(progressReader{rr, touch}, want[done:])
		done += n
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("%w: %d of %d bytes at offset %d", errShort, done, len(want), off)
		}
		return err
	})
	if err != nil {
		return done, err
	}
	if len(want) < len(p) {
		return done, io.EOF
	}
	return done, nil
}

// Read reads from the current offset.
func (r *Reader) Read(p []byte) (int, error) {
	n, err := r.ReadAt(p, r.off)
	r.off += int64(n)
	return n, err
}

// Seek sets the offset for the next Read.
func (r *Reader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += r.off
	case io.SeekEnd:
		offset += r.size
	default:
		return 0, fmt.Errorf("seek %s: bad whence %d", redact(r.loc), whence)
	}
	if offset < 0 {
		return 0, fmt.Errorf("seek %s: negative offset %d", redact(r.loc), offset)
	}
	r.off = offset
	return offset, nil
}

// Close releases nothing (buckets belong to the Store); it exists so that
// readers that close their input can close a Reader.
func (r *Reader) Close() error { return nil }
