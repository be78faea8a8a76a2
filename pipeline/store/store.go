// Package store reads and writes objects in object storage for the
// pipeline: s3://, gs://, file:// and mem:// URLs through gocloud.dev/blob,
// with a range-reading io.ReaderAt for Parquet readers, bounded retries with
// backoff on transient errors (5xx, throttling, resets, truncated bodies) and
// a conditional create for commit markers.
//
// A location is a URL whose host is the bucket and whose path is the key
// (or a key prefix); the query configures the bucket:
//
//	s3://bucket/path/key?region=eu-west-1&endpoint=http://host:9000&use_path_style=true&disable_https=true
//	gs://bucket/path/key
//	file:///absolute/path/key
//	mem://name/path/key     (in-process; shared by every Open in the process)
//
// The store does its own retries: the AWS SDK's retryer is switched off for
// s3:// buckets so that every attempt is counted, logged and bounded here,
// and a body cut short is retried from where it stopped. Every attempt has a
// deadline: one that makes no progress (no response, no body bytes read or
// sent) for Retry.Idle is abandoned and retried, so a store that accepts
// connections but never answers costs at most Attempts × Idle plus the
// backoff. Permanent failures are never retried and are marked for the
// caller: ErrDenied (access refused) and ErrConfig (credentials, TLS trust,
// a bad location).
package store

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"
	gcaws "gocloud.dev/aws"
	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"
	_ "gocloud.dev/blob/gcsblob" // gs:// through the default URL mux
	"gocloud.dev/blob/memblob"
	"gocloud.dev/blob/s3blob"
	"gocloud.dev/gcerrors"
	"google.golang.org/api/googleapi"
)

// IsURL reports whether loc names an object-store location rather than a
// local path: it has a scheme this package opens.
func IsURL(loc string) bool {
	scheme, _, ok := strings.Cut(loc, "://")
	if !ok {
		return false
	}
	switch scheme {
	case "s3", "gs", "file", "mem":
		return true
	}
	return false
}

// Retry bounds the attempts of one operation on transient errors.
type Retry struct {
	Attempts int           // total attempts, at least 1
	Base     time.Duration // first backoff; doubled per attempt, with jitter
	Max      time.Duration // largest backoff
	// Idle is the deadline of an attempt that makes no progress: no
	// response, or no body byte read or sent, for this long abandons the
	// attempt (a transient failure, retried). 0: no deadline.
	Idle time.Duration
}

// DefaultRetry is 6 attempts, the backoff doubling from 200 ms (each one
// jittered to between half and all of its value): at most 6.2 s of waiting
// before an operation fails; an attempt that makes no progress for 30 s is
// abandoned, so an operation against a store that never answers fails
// after at most 6 × 30 s + 6.2 s.
var DefaultRetry = Retry{Attempts: 6, Base: 200 * time.Millisecond, Max: 5 * time.Second, Idle: 30 * time.Second}

// IdleEnv overrides DefaultRetry.Idle for the process-wide Store (a Go
// duration, e.g. "10s").
const IdleEnv = "BATCHMATCH_STORE_IDLE_TIMEOUT"

// Store opens buckets once and runs every operation with retries.
// Its zero value is not usable; call New.
type Store struct {
	Retry Retry

	mu      sync.Mutex
	log     *slog.Logger
	buckets map[string]*blob.Bucket
	retries int64 // attempts that failed transiently and were retried
}

// New returns a Store with DefaultRetry that logs retries to log (nil: discard).
func New(log *slog.Logger) *Store {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Store{Retry: DefaultRetry, log: log, buckets: map[string]*blob.Bucket{}}
}

// SetLogger sets where retries are logged.
func (s *Store) SetLogger(log *slog.Logger) {
	s.mu.Lock()
	s.log = log
	s.mu.Unlock()
}

var (
	defaultOnce  sync.Once
	defaultStore *Store
)

// Default is the process-wide Store. $BATCHMATCH_STORE_IDLE_TIMEOUT, when
// set to a positive duration, replaces the attempt deadline.
func Default() *Store {
	defaultOnce.Do(func() {
		defaultStore = New(slog.Default())
		if d, err := time.ParseDuration(os.Getenv(IdleEnv)); err == nil && d > 0 {
			defaultStore.Retry.Idle = d
		}
	})
	return defaultStore
}

// Retries is the number of attempts that failed transiently and were retried.
func (s *Store) Retries() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.retries
}

// Close closes every bucket the store opened.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for k, b := range s.buckets {
		errs = append(errs, b.Close())
		delete(s.buckets, k)
	}
	return errors.Join(errs...)
}

// Join appends slash-separated elements to a location URL's path, keeping
// its query.
func Join(loc string, elem ...string) string {
	base, query, _ := strings.Cut(loc, "?")
	base = strings.TrimSuffix(base, "/")
	for _, e := range elem {
		if e = strings.Trim(e, "/"); e != "" {
			base += "/" + e
		}
	}
	if query != "" {
		return base + "?" + query
	}
	return base
}

// split parses loc into its bucket and key.
func (s *Store) split(ctx context.Context, loc string) (*blob.Bucket, string, error) {
	u, err := url.Parse(loc)
	if err != nil {
		return nil, "", fmt.Errorf("bad location %q: %w", loc, err)
	}
	if !IsURL(loc) {
		return nil, "", fmt.Errorf("bad location %q: not an s3://, gs://, file:// or mem:// URL", loc)
	}
	key := strings.TrimPrefix(u.Path, "/")
	id := u.Scheme + "://" + u.Host + "?" + u.RawQuery
	if u.Scheme == "file" {
		if u.Host != "" {
			return nil, "", fmt.Errorf("bad location %q: file URLs take an absolute path (file:///dir/...)", loc)
		}
		id = "file:///?" + u.RawQuery
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, ok := s.buckets[id]; ok {
		return b, key, nil
	}
	b, err := openBucket(ctx, u, sdkLogger{s})
	if err != nil {
		// A bucket that cannot be opened is a bad URL, bad parameters or
		// missing credentials: nothing a retry fixes.
		return nil, "", fmt.Errorf("opening the bucket of %s: %w: %w", redact(loc), ErrConfig, err)
	}
	s.buckets[id] = b
	return b, key, nil
}

func openBucket(ctx context.Context, u *url.URL, sdkLog logging.Logger) (*blob.Bucket, error) {
	q := u.Query()
	switch u.Scheme {
	case "mem":
		if len(q) > 0 {
			return nil, errors.New("mem:// takes no parameters")
		}
		return memblob.OpenBucket(nil), nil
	case "file":
		if len(q) > 0 {
			return nil, errors.New("file:// takes no parameters")
		}
		// Keys are absolute paths below "/"; no metadata side files; the
		// temporary file of a write sits next to its final name, so the
		// rename that publishes it never crosses file systems.
		// Directories 0750 and files 0640 (writerOptions), as for a local
		// --out: output is private to the job's user and group.
		return fileblob.OpenBucket("/", &fileblob.Options{Metadata: fileblob.MetadataDontWrite, NoTempDir: true, DirFileMode: 0o750})
	case "s3":
		return openS3(ctx, u.Host, q, sdkLog)
	default:
		return blob.OpenBucket(ctx, u.Scheme+"://"+u.Host+"?"+u.RawQuery)
	}
}

// openS3 is s3blob's URL opener with the SDK's retries switched off (the
// store retries), its log lines in the store's logger (the SDK's own
// logger writes plain text to stderr) and the bucket options this package
// supports.
func openS3(ctx context.Context, bucket string, q url.Values, sdkLog logging.Logger) (*blob.Bucket, error) {
	// Ranged GETs (how Parquet inputs are read) carry no whole-object
	// checksum to validate: the SDK would warn "Response has no supported
	// checksum" on every one of them.
	opts := []func(*s3.Options){func(o *s3.Options) { o.DisableLogOutputChecksumValidationSkipped = true }}
	for _, p := range []struct {
		key string
		set func(o *s3.Options, v bool)
	}{
		{"use_path_style", func(o *s3.Options, v bool) { o.UsePathStyle = v }},
		{"disable_https", func(o *s3.Options, v bool) { o.EndpointOptions.DisableHTTPS = v }},
	} {
		if raw := q.Get(p.key); raw != "" {
			v, err := strconv.ParseBool(raw)
			if err != nil {
				return nil, fmt.Errorf("invalid value for %s: %w", p.key, err)
			}
			q.Del(p.key)
			set := p.set
			opts = append(opts, func(o *s3.Options) { set(o, v) })
		}
	}
	cfg, err := gcaws.V2ConfigFromURLParams(ctx, q)
	if err != nil {
		return nil, err
	}
	cfg.Retryer = func() aws.Retryer { return aws.NopRetryer{} }
	cfg.Logger = sdkLog
	client := s3.NewFromConfig(cfg, opts...)
	return s3blob.OpenBucket(ctx, client, bucket, &s3blob.Options{RequestChecksumCalculation: cfg.RequestChecksumCalculation})
}

// sdkLogger routes the AWS SDK's log lines to the store's logger (the one
// SetLogger set when the line is logged).
type sdkLogger struct{ s *Store }

// Logf implements the SDK's logging.Logger.
func (l sdkLogger) Logf(c logging.Classification, format string, v ...any) {
	level := slog.LevelInfo
	switch c {
	case logging.Warn:
		level = slog.LevelWarn
	case logging.Debug:
		level = slog.LevelDebug
	}
	l.s.mu.Lock()
	log := l.s.log
	l.s.mu.Unlock()
	log.Log(context.Background(), level, "object storage SDK: "+strings.TrimSpace(fmt.Sprintf(format, v...)))
}

// transient reports whether err may go away on a retry.
func transient(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil {
		return false
	}
	if errors.As(err, new(permanent)) || permanentKind(err) != nil {
		return false
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, errShort) || errors.Is(err, ErrStalled) {
		return true
	}
	switch gcerrors.Code(err) {
	case gcerrors.NotFound, gcerrors.PermissionDenied, gcerrors.InvalidArgument,
		gcerrors.FailedPrecondition, gcerrors.AlreadyExists, gcerrors.Unimplemented, gcerrors.Canceled:
		return false
	}
	return true // Unknown (5xx, resets), Internal, ResourceExhausted, DeadlineExceeded
}

// S3 error codes of requests refused for who is asking (ErrDenied) and of
// requests whose credentials are wrong (ErrConfig).
var (
	s3Denied = map[string]bool{"AccessDenied": true, "Forbidden": true, "AllAccessDisabled": true,
		"AccountProblem": true}
	s3Auth = map[string]bool{"InvalidAccessKeyId": true, "SignatureDoesNotMatch": true, "ExpiredToken": true,
		"InvalidToken": true, "TokenRefreshRequired": true, "AuthorizationHeaderMalformed": true,
		"MissingSecurityHeader": true, "InvalidSecurity": true, "InvalidClientTokenId": true,
		"UnrecognizedClientException": true, "CredentialsNotSupported": true}
)

// permanentKind returns ErrDenied or ErrConfig when err is a failure that
// no retry can fix, nil otherwise: the store refusing access (S3
// AccessDenied, any HTTP 403), credentials that are missing, wrong or
// expired (S3 InvalidAccessKeyId, SignatureDoesNotMatch, ExpiredToken …,
// any HTTP 401, a request the SDK could not sign), and a TLS certificate
// the client does not trust.
func permanentKind(err error) error {
	var api smithy.APIError
	if errors.As(err, &api) {
		switch code := api.ErrorCode(); {
		case s3Denied[code]:
			return ErrDenied
		case s3Auth[code]:
			return ErrConfig
		}
	}
	var status interface{ HTTPStatusCode() int }
	if errors.As(err, &status) {
		switch status.HTTPStatusCode() {
		case http.StatusForbidden:
			return ErrDenied
		case http.StatusUnauthorized:
			return ErrConfig
		}
	}
	var gerr *googleapi.Error
	if errors.As(err, &gerr) {
		switch gerr.Code {
		case http.StatusForbidden:
			return ErrDenied
		case http.StatusUnauthorized:
			return ErrConfig
		}
	}
	var sign *v4.SigningError
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	var record tls.RecordHeaderError
	if errors.As(err, &sign) || errors.As(err, &unknownCA) || errors.As(err, &hostname) ||
		errors.As(err, &invalid) || errors.As(err, &verify) || errors.As(err, &record) {
		return ErrConfig
	}
	return nil
}

var errShort = errors.New("object body shorter than its range")

// attempt runs op once with a deadline on progress: when touch (which op
// calls whenever bytes move) has not been called for idle, the attempt's
// context is cancelled and the attempt fails with ErrStalled.
func attempt(ctx context.Context, idle time.Duration, op func(ctx context.Context, touch func()) error) error {
	if idle <= 0 {
		return op(ctx, func() {})
	}
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	t := time.AfterFunc(idle, func() { cancel(ErrStalled) })
	defer t.Stop()
	err := op(actx, func() { t.Reset(idle) })
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(actx), ErrStalled) {
		// Not %w: the cancellation inside err is the deadline's, not the
		// caller's (who would take it for an interrupted run).
		return fmt.Errorf("%w: no answer or progress for %v: %v", ErrStalled, idle, err)
	}
	return err
}

// progressReader calls touch after every read that moved bytes.
type progressReader struct {
	r     io.Reader
	touch func()
}

func (p progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.touch()
	}
	return n, err
}

// do runs op until it succeeds, fails permanently or runs out of attempts.
// Each attempt gets its own context, cancelled when it stalls (Retry.Idle);
// op calls touch whenever it makes progress.
func (s *Store) do(ctx context.Context, what, loc string, op func(ctx context.Context, touch func()) error) error {
	r := s.Retry
	if r.Attempts < 1 {
		r.Attempts = 1
	}
	var err error
	for n := 1; ; n++ {
		if err = attempt(ctx, r.Idle, op); err == nil {
			return nil
		}
		if n >= r.Attempts || !transient(ctx, err) {
			break
		}
		back := r.Base << (n - 1)
		if back > r.Max || back <= 0 {
			back = r.Max
		}
		back = back/2 + rand.N(back/2+1)
		s.mu.Lock()
		s.retries++
		log := s.log
		s.mu.Unlock()
		log.Warn("object storage: transient error, retrying", "op", what, "object", redact(loc),
			"attempt", n, "of", r.Attempts, "backoff_seconds", back.Seconds(), "error", err)
		t := time.NewTimer(back)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s %s: %w (after %v)", what, redact(loc), ctx.Err(), err)
		case <-t.C:
		}
	}
	if kind := permanentKind(err); kind != nil {
		return fmt.Errorf("%s %s: %w: %w", what, redact(loc), kind, err)
	}
	if gcerrors.Code(err) == gcerrors.NotFound {
		return fmt.Errorf("%s %s: %w: %w", what, redact(loc), os.ErrNotExist, err)
	}
	if transient(ctx, err) {
		return fmt.Errorf("%s %s: %w after %d attempts: %w", what, redact(loc), ErrUnavailable, r.Attempts, err)
	}
	return fmt.Errorf("%s %s: %w", what, redact(loc), err)
}

// resumeRounds bounds how many times a read that keeps making progress
// (bodies cut short, each attempt resuming where the last stopped) gets a
// fresh set of attempts.
const resumeRounds = 8

// doResumable is do for an operation that resumes where it stopped: a
// round of attempts that moved progress() forward is followed by another
// round, up to resumeRounds.
func (s *Store) doResumable(ctx context.Context, what, loc string, progress func() int64, op func(ctx context.Context, touch func()) error) error {
	var err error
	for round := 0; round < resumeRounds; round++ {
		before := progress()
		if err = s.do(ctx, what, loc, op); err == nil || progress() == before || !errors.Is(err, ErrUnavailable) {
			return err
		}
	}
	return err
}

// redact drops a location's query (it may carry endpoints or key paths,
// never needed to name the object).
func redact(loc string) string {
	base, _, _ := strings.Cut(loc, "?")
	return base
}

// Size returns an object's size in bytes.
func (s *Store) Size(ctx context.Context, loc string) (int64, error) {
	b, key, err := s.split(ctx, loc)
	if err != nil {
		return 0, err
	}
	var size int64
	err = s.do(ctx, "stat", loc, func(ctx context.Context, _ func()) error {
		a, err := b.Attributes(ctx, key)
		if err == nil {
			size = a.Size
		}
		return err
	})
	return size, err
}

// Exists reports whether an object exists.
func (s *Store) Exists(ctx context.Context, loc string) (bool, error) {
	b, key, err := s.split(ctx, loc)
	if err != nil {
		return false, err
	}
	var ok bool
	err = s.do(ctx, "stat", loc, func(ctx context.Context, _ func()) (err error) {
		ok, err = b.Exists(ctx, key)
		return err
	})
	return ok, err
}

// List returns the keys under a location (a prefix: "dir" lists "dir/…"),
// relative to it, sorted.
func (s *Store) List(ctx context.Context, loc string) ([]string, error) {
	b, key, err := s.split(ctx, loc)
	if err != nil {
		return nil, err
	}
	prefix := key
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	var keys []string
	err = s.do(ctx, "list", loc, func(ctx context.Context, touch func()) error {
		keys = keys[:0]
		it := b.List(&blob.ListOptions{Prefix: prefix})
		for {
			obj, err := it.Next(ctx)
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			touch()
			if !obj.IsDir {
				keys = append(keys, strings.TrimPrefix(obj.Key, prefix))
			}
		}
	})
	return keys, err // the iterator returns keys in lexicographic order
}

// ReadFile returns a whole object.
func (s *Store) ReadFile(ctx context.Context, loc string) ([]byte, error) {
	b, key, err := s.split(ctx, loc)
	if err != nil {
		return nil, err
	}
	var data []byte
	err = s.do(ctx, "read", loc, func(ctx context.Context, touch func()) error {
		r, err := b.NewReader(ctx, key, nil)
		if err != nil {
			return err
		}
		defer r.Close()
		data, err = io.ReadAll(progressReader{r, touch})
		return err
	})
	return data, err
}

// Download copies an object to w from the start, resuming after a
// transient failure at the byte where it stopped (w sees every byte once).
func (s *Store) Download(ctx context.Context, loc string, w io.Writer) (int64, error) {
	b, key, err := s.split(ctx, loc)
	if err != nil {
		return 0, err
	}
	var done int64
	size := int64(-1)
	err = s.doResumable(ctx, "read", loc, func() int64 { return done }, func(ctx context.Context, touch func()) error {
		r, err := b.NewRangeReader(ctx, key, done, -1, nil)
		if err != nil {
			return err
		}
		defer r.Close()
		touch()
		if size < 0 {
			size = r.Size() // the whole object's, whatever the range
		}
		n, err := io.Copy(w, progressReader{r, touch})
		done += n
		if err != nil {
			return err
		}
		if done < size {
			return fmt.Errorf("%w: %d of %d bytes", errShort, done, size)
		}
		return nil
	})
	return done, err
}

// Upload writes the file at path to loc. With ifNotExist the write fails
// with ErrExists when the object is already there (S3 If-None-Match: *,
// GCS ifGenerationMatch=0), which makes the create of a commit marker
// atomic between racing writers.
func (s *Store) Upload(ctx context.Context, loc, path string, ifNotExist bool) error {
	b, key, err := s.split(ctx, loc)
	if err != nil {
		return err
	}
	err = s.do(ctx, "write", loc, func(ctx context.Context, touch func()) error {
		f, err := os.Open(path)
		if err != nil {
			return permanent{err}
		}
		defer f.Close()
		return b.Upload(ctx, key, progressReader{f, touch}, writerOptions(key, ifNotExist))
	})
	var p permanent
	if errors.As(err, &p) {
		return p.error
	}
	if gcerrors.Code(err) == gcerrors.FailedPrecondition {
		return fmt.Errorf("%w: %s: %w", ErrExists, redact(loc), err)
	}
	return err
}

// WriteFile writes data to loc (see Upload for ifNotExist).
func (s *Store) WriteFile(ctx context.Context, loc string, data []byte, ifNotExist bool) error {
	b, key, err := s.split(ctx, loc)
	if err != nil {
		return err
	}
	err = s.do(ctx, "write", loc, func(ctx context.Context, _ func()) error {
		return b.WriteAll(ctx, key, data, writerOptions(key, ifNotExist))
	})
	if gcerrors.Code(err) == gcerrors.FailedPrecondition {
		return fmt.Errorf("%w: %s: %w", ErrExists, redact(loc), err)
	}
	return err
}

// writerOptions are the options of every write: the content type, the
// conditional create, and for file:// buckets the mode of the new file
// (0640, as a local --out writes; fileblob would leave 0666 less umask).
func writerOptions(key string, ifNotExist bool) *blob.WriterOptions {
	return &blob.WriterOptions{IfNotExist: ifNotExist, ContentType: contentType(key),
		BeforeWrite: func(as func(any) bool) error {
			var f *os.File
			if as(&f) {
				return f.Chmod(0o640)
			}
			return nil
		}}
}

// contentType is the media type an object is written with.
func contentType(key string) string {
	switch path.Ext(key) {
	case ".parquet":
		return "application/vnd.apache.parquet"
	case ".json":
		return "application/json"
	case ".html":
		return "text/html; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	}
	return "application/octet-stream"
}

// ErrUnavailable: an operation still failed transiently after every attempt.
var ErrUnavailable = errors.New("object storage unavailable")

// ErrExists: a conditional create found the object already there.
var ErrExists = errors.New("object already exists")

// ErrDenied: the store refused access (S3 AccessDenied, HTTP 403): the
// identity the job runs as lacks a permission. Never retried.
var ErrDenied = errors.New("object storage: access denied")

// ErrConfig: the store cannot be used as configured: credentials missing,
// invalid or expired, a server certificate the client does not trust, a
// bucket URL that cannot be opened. Never retried.
var ErrConfig = errors.New("object storage: not usable as configured")

// ErrStalled: an attempt made no progress for Retry.Idle (transient: retried).
var ErrStalled = errors.New("object storage: request stalled")

// permanent marks an error the retry loop must not retry.
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

// Delete removes an object; a missing object is not an error.
func (s *Store) Delete(ctx context.Context, loc string) error {
	b, key, err := s.split(ctx, loc)
	if err != nil {
		return err
	}
	err = s.do(ctx, "delete", loc, func(ctx context.Context, _ func()) error { return b.Delete(ctx, key) })
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// DeleteAll removes every object under a location (a prefix).
func (s *Store) DeleteAll(ctx context.Context, loc string) error {
	keys, err := s.List(ctx, loc)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := s.Delete(ctx, Join(loc, k)); err != nil {
			return err
		}
	}
	return nil
}
