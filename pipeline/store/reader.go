package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"cloud.google.com/go/storage"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

// Reader reads one object by ranges: an io.ReaderAt (and io.ReadSeeker)
// for Parquet readers, which read the footer and then each column chunk
// they need with one ranged GET. Every ReadAt is retried on transient
// errors, and a body that ends before its range is read again from where it
// stopped. Safe for concurrent ReadAt calls; Read and Seek share one offset.
//
// A Reader reads one version of the object: the one Open found. Every range
// is requested on condition that the object is still that version (S3
// If-Match on its ETag, a GCS generation match) and checked against its
// size and modification time (file:// and mem://, which have no
// conditions), so that an object replaced while a Parquet file is read
// fails with ErrChanged instead of mixing a footer and column chunks of two
// versions.
type Reader struct {
	s    *Store
	ctx  context.Context
	b    *blob.Bucket
	key  string
	loc  string
	size int64
	mod  time.Time
	etag string
	gen  int64
	off  int64
}

// ErrChanged is an object that changed while it was being read. A retry of
// the whole job reads the new version consistently; a retry of the read
// cannot.
var ErrChanged = errors.New("the object changed while it was read")

// Open returns a Reader of the object at loc; its size and version are
// read once, here. ctx bounds every later read.
func (s *Store) Open(ctx context.Context, loc string) (*Reader, error) {
	b, key, err := s.split(ctx, loc)
	if err != nil {
		return nil, err
	}
	r := &Reader{s: s, ctx: ctx, b: b, key: key, loc: loc}
	err = s.do(ctx, "stat", loc, func(ctx context.Context, _ progress) error {
		a, err := b.Attributes(ctx, key)
		if err != nil {
			return err
		}
		r.size, r.mod, r.etag = a.Size, a.ModTime, a.ETag
		var oa storage.ObjectAttrs
		if a.As(&oa) {
			r.gen = oa.Generation
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// pin makes a range request conditional on the version Open found.
func (r *Reader) pin(as func(any) bool) error {
	var in *s3.GetObjectInput
	if r.etag != "" && as(&in) {
		in.IfMatch = aws.String(r.etag)
	}
	var oh **storage.ObjectHandle
	if r.gen != 0 && as(&oh) {
		*oh = (*oh).If(storage.Conditions{GenerationMatch: r.gen})
	}
	return nil
}

// sameTime compares modification times at the coarser precision of the
// two (a GCS or S3 response carries whole seconds, their listings more);
// an unknown time matches any.
func sameTime(a, b time.Time) bool {
	if a.IsZero() || b.IsZero() || a.Equal(b) {
		return true
	}
	if a.Nanosecond() == 0 || b.Nanosecond() == 0 {
		return a.Truncate(time.Second).Equal(b.Truncate(time.Second))
	}
	return false
}

// changed wraps ErrChanged as a failure no retry of the read can fix.
func (r *Reader) changed(why string) error {
	return permanent{fmt.Errorf("read %s: %w (%s)", redact(r.loc), ErrChanged, why)}
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
	err := r.s.doResumable(r.ctx, "read", r.loc, func() int64 { return int64(done) }, func(ctx context.Context, p progress) error {
		rr, err := r.b.NewRangeReader(ctx, r.key, off+int64(done), int64(len(want)-done), &blob.ReaderOptions{BeforeRead: r.pin})
		if gcerrors.Code(err) == gcerrors.FailedPrecondition {
			return r.changed("its version no longer matches")
		}
		if err != nil {
			return err
		}
		defer rr.Close()
		var gr *storage.Reader
		if r.gen != 0 && rr.As(&gr) && gr.Attrs.Generation != 0 && gr.Attrs.Generation != r.gen {
			return r.changed(fmt.Sprintf("generation %d, %d when opened", gr.Attrs.Generation, r.gen))
		}
		if rr.Size() != r.size || !sameTime(rr.ModTime(), r.mod) {
			return r.changed(fmt.Sprintf("size %d and modified %s, %d and %s when opened",
				rr.Size(), rr.ModTime().Format(time.RFC3339Nano), r.size, r.mod.Format(time.RFC3339Nano)))
		}
		p.touch()
		n, err := io.ReadFull(progressReader{rr, p}, want[done:])
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
