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
	crand "crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"cloud.google.com/go/storage"
	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
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
	// Floor is the least an attempt must move in every Idle window
	// (bytes of a body read or sent, or a listed page) unless it finishes
	// first: an answer that trickles is abandoned like one that never
	// comes. 0: any progress will do.
	Floor int64
	// Limit bounds an attempt's total time, however fast it moves
	// (0: no bound).
	Limit time.Duration
}

// DefaultRetry is 6 attempts, the backoff doubling from 200 ms (each one
// jittered to between half and all of its value): at most 6.2 s of waiting
// before an operation fails. An attempt that makes no progress for 30 s,
// or moves less than 64 KiB in a 30 s window (about 2 KiB/s), is
// abandoned, so an operation against a store that never answers, or
// answers too slowly, fails after at most 6 × 30 s + 6.2 s; no attempt
// lasts more than an hour.
var DefaultRetry = Retry{Attempts: 6, Base: 200 * time.Millisecond, Max: 5 * time.Second,
	Idle: 30 * time.Second, Floor: 64 << 10, Limit: time.Hour}

// IdleEnv overrides DefaultRetry.Idle for the process-wide Store (a
// positive Go duration, e.g. "10s"; anything else is refused by CheckEnv).
const IdleEnv = "BATCHMATCH_STORE_IDLE_TIMEOUT"

// ErrSetting is a store setting from the environment that cannot be used
// (CheckEnv): the operator's mistake, never retried.
var ErrSetting = errors.New("invalid object-store setting")

// parseIdle reads $BATCHMATCH_STORE_IDLE_TIMEOUT ("": the default).
func parseIdle(v string) (time.Duration, error) {
	if v == "" {
		return DefaultRetry.Idle, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%w: %s=%q: want a positive Go duration such as 30s or 500ms", ErrSetting, IdleEnv, v)
	}
	return d, nil
}

// CheckEnv reports a store setting in the environment that cannot be used
// (wrapping ErrSetting), which Default would otherwise ignore. Commands
// call it before they touch a store.
func CheckEnv() error {
	_, err := parseIdle(os.Getenv(IdleEnv))
	return err
}

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
// set to a positive duration, replaces the attempt deadline (CheckEnv
// refuses any other value).
func Default() *Store {
	defaultOnce.Do(func() {
		defaultStore = New(slog.Default())
		if d, err := parseIdle(os.Getenv(IdleEnv)); err == nil {
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

// Parent is the location that holds loc (its path without the last
// element), keeping its query.
func Parent(loc string) string {
	base, query, _ := strings.Cut(loc, "?")
	base = strings.TrimSuffix(base, "/")
	if i := strings.LastIndex(base, "/"); i >= 0 && !strings.HasSuffix(base[:i], ":/") {
		base = base[:i]
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
		return nil, "", fmt.Errorf("%w: bad location %q: %w", ErrConfig, loc, err)
	}
	if !IsURL(loc) {
		return nil, "", fmt.Errorf("%w: bad location %q: not an s3://, gs://, file:// or mem:// URL", ErrConfig, loc)
	}
	key := strings.TrimPrefix(u.Path, "/")
	id := u.Scheme + "://" + u.Host + "?" + u.RawQuery
	if u.Scheme == "file" {
		if u.Host != "" {
			return nil, "", fmt.Errorf("%w: bad location %q: file URLs take an absolute path (file:///dir/...)", ErrConfig, loc)
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

// transient reports whether err may go away on a retry: a failure without
// an answer (a reset, a body cut short, a stalled attempt) or an answer
// that says so (HTTP 408, 429, 5xx other than 501 and 505, and the S3
// codes of throttling, timeouts and conflicting concurrent writes). Any
// other refusal by the store is permanent: retrying the same request gets
// the same answer.
func transient(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil {
		return false
	}
	if errors.As(err, new(permanent)) || permanentKind(err) != nil || noBucket(err) {
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
	return true // no answer (resets, DNS), Internal, ResourceExhausted, DeadlineExceeded, 408/429/5xx
}

// S3 error codes of requests refused for who is asking (ErrDenied), of
// requests whose credentials are wrong (ErrConfig), and of answers that a
// retry may change although their HTTP status is in the 4xx range.
var (
	s3Denied = map[string]bool{"AccessDenied": true, "Forbidden": true, "AllAccessDisabled": true,
		"AccountProblem": true}
	s3Auth = map[string]bool{"InvalidAccessKeyId": true, "SignatureDoesNotMatch": true, "ExpiredToken": true,
		"InvalidToken": true, "TokenRefreshRequired": true, "AuthorizationHeaderMalformed": true,
		"MissingSecurityHeader": true, "InvalidSecurity": true, "InvalidClientTokenId": true,
		"UnrecognizedClientException": true, "CredentialsNotSupported": true}
	s3Transient = map[string]bool{"RequestTimeout": true, "SlowDown": true, "Throttling": true,
		"ThrottlingException": true, "RequestLimitExceeded": true, "ConditionalRequestConflict": true,
		"OperationAborted": true, "IncompleteBody": true, "BadDigest": true, "InternalError": true,
		"ServiceUnavailable": true}
)

// httpStatus is the HTTP status of the answer err carries (0: none).
func httpStatus(err error) int {
	var status interface{ HTTPStatusCode() int }
	if errors.As(err, &status) {
		return status.HTTPStatusCode()
	}
	var gerr *googleapi.Error
	if errors.As(err, &gerr) {
		return gerr.Code
	}
	return 0
}

// retryableStatus: HTTP answers that a retry may change.
func retryableStatus(code int) bool {
	switch {
	case code == http.StatusRequestTimeout, code == http.StatusTooManyRequests:
		return true
	case code == http.StatusNotImplemented, code == http.StatusHTTPVersionNotSupported:
		return false
	}
	return code >= 500 && code < 600
}

// permanentKind returns ErrDenied or ErrConfig when err is a failure that
// no retry can fix, nil otherwise: the store refusing access (S3
// AccessDenied, any HTTP 403), credentials that are missing, wrong or
// expired (S3 InvalidAccessKeyId, SignatureDoesNotMatch, ExpiredToken …,
// any HTTP 401, a request the SDK could not sign), a TLS certificate the
// client does not trust, and every other answer that refuses the request
// as it is made (ErrConfig): a redirect to another region (S3 301
// PermanentRedirect), a malformed request or bucket name (400
// InvalidRequest, InvalidBucketName), a method the server does not
// implement (501 NotImplemented), and any 4xx but 404 (missing: decided by
// the caller), 408 and 429 (retried), 409 and 412 (conditions), and the S3
// codes that say "try again"; and a local path that cannot be one
// (file://: a component that is a file, a name too long).
func permanentKind(err error) error {
	var api smithy.APIError
	code := ""
	if errors.As(err, &api) {
		code = api.ErrorCode()
		switch {
		case s3Denied[code]:
			return ErrDenied
		case s3Auth[code]:
			return ErrConfig
		}
	}
	status := httpStatus(err)
	switch {
	case status == http.StatusForbidden:
		return ErrDenied
	case status == http.StatusUnauthorized:
		return ErrConfig
	case status == 0, s3Transient[code], retryableStatus(status), status == http.StatusNotFound,
		status == http.StatusConflict, status == http.StatusPreconditionFailed, status == http.StatusNotModified:
	default: // 3xx, 4xx, 501, 505: the request itself is wrong here
		return ErrConfig
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
	if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.ENAMETOOLONG) {
		return ErrConfig
	}
	return nil
}

// noBucket reports whether err says the bucket itself does not exist (S3
// NoSuchBucket, GCS storage.ErrBucketNotExist), as opposed to an object.
func noBucket(err error) bool {
	var api smithy.APIError
	if errors.As(err, &api) && api.ErrorCode() == "NoSuchBucket" {
		return true
	}
	return errors.Is(err, storage.ErrBucketNotExist)
}

var errShort = errors.New("object body shorter than its range")

// progress is what an attempt reports as it moves: bytes of a body read or
// sent, or a step that counts as enough progress for the window (a listed
// page or object).
type progress struct {
	touch func() // resets the idle deadline
	moved *atomic.Int64
}

// bytes records n bytes moved.
func (p progress) bytes(n int) {
	if n > 0 {
		p.moved.Add(int64(n))
		p.touch()
	}
}

// step records progress that is not counted in bytes and satisfies the
// floor of the current window.
func (p progress) step() {
	p.moved.Store(math.MaxInt64 / 2)
	p.touch()
}

// attempt runs op once with deadlines on progress: when op reports no
// progress for r.Idle, when a window of r.Idle moves less than r.Floor, or
// when r.Limit has passed, the attempt's context is cancelled and the
// attempt fails with ErrStalled.
func attempt(ctx context.Context, r Retry, op func(ctx context.Context, p progress) error) error {
	p := progress{touch: func() {}, moved: new(atomic.Int64)}
	if r.Idle <= 0 && r.Limit <= 0 {
		return op(ctx, p)
	}
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var why atomic.Value
	stall := func(msg string) func() {
		return func() {
			why.CompareAndSwap(nil, msg)
			cancel(ErrStalled)
		}
	}
	if r.Limit > 0 {
		t := time.AfterFunc(r.Limit, stall(fmt.Sprintf("not done after %v", r.Limit)))
		defer t.Stop()
	}
	if r.Idle > 0 {
		idle := time.AfterFunc(r.Idle, stall(fmt.Sprintf("no answer or progress for %v", r.Idle)))
		defer idle.Stop()
		p.touch = func() { idle.Reset(r.Idle) }
		if r.Floor > 0 {
			// The windows start with the first progress (before it, the
			// idle deadline alone waits for an answer).
			var window *time.Timer
			window = time.AfterFunc(math.MaxInt64, func() {
				if n := p.moved.Swap(0); n < r.Floor {
					stall(fmt.Sprintf("%d bytes moved in %v, less than the floor of %d", n, r.Idle, r.Floor))()
					return
				}
				window.Reset(r.Idle)
			})
			defer window.Stop()
			var first sync.Once
			p.touch = func() {
				idle.Reset(r.Idle)
				first.Do(func() { window.Reset(r.Idle) })
			}
		}
	}
	err := op(actx, p)
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(actx), ErrStalled) {
		// Not %w: the cancellation inside err is the deadline's, not the
		// caller's (who would take it for an interrupted run).
		msg, _ := why.Load().(string)
		return fmt.Errorf("%w: %s: %v", ErrStalled, msg, err)
	}
	return err
}

// progressReader reports every read that moved bytes.
type progressReader struct {
	r io.Reader
	p progress
}

func (pr progressReader) Read(b []byte) (int, error) {
	n, err := pr.r.Read(b)
	pr.p.bytes(n)
	return n, err
}

// do runs op until it succeeds, fails permanently or runs out of attempts.
// Each attempt gets its own context, cancelled when it stalls (attempt);
// op reports its progress.
func (s *Store) do(ctx context.Context, what, loc string, op func(ctx context.Context, p progress) error) error {
	r := s.Retry
	if r.Attempts < 1 {
		r.Attempts = 1
	}
	var err error
	for n := 1; ; n++ {
		if err = attempt(ctx, r, op); err == nil {
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
	if noBucket(err) {
		return fmt.Errorf("%s %s: %w: %w", what, redact(loc), ErrNoBucket, err)
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
// round of attempts that moved done() forward by more than Retry.Floor per
// attempt (any progress when there is no floor) is followed by another
// round, up to resumeRounds. A store that trickles below the floor gets
// one round, as for do.
func (s *Store) doResumable(ctx context.Context, what, loc string, done func() int64, op func(ctx context.Context, p progress) error) error {
	var err error
	enough := int64(max(s.Retry.Attempts, 1)) * s.Retry.Floor
	for round := 0; round < resumeRounds; round++ {
		before := done()
		if err = s.do(ctx, what, loc, op); err == nil || done()-before <= enough || !errors.Is(err, ErrUnavailable) {
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
	err = s.do(ctx, "stat", loc, func(ctx context.Context, _ progress) error {
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
	err = s.do(ctx, "stat", loc, func(ctx context.Context, _ progress) (err error) {
		ok, err = b.Exists(ctx, key)
		return err
	})
	if err == nil && !ok {
		// A missing bucket answers a HEAD like a missing object: make
		// sure it is the object.
		if _, lerr := s.ListObjects(ctx, loc); errors.Is(lerr, ErrNoBucket) {
			return false, lerr
		}
	}
	return ok, err
}

// Object is one object of a listing: its key relative to the listed
// location, and its size.
type Object struct {
	Key  string
	Size int64
}

// ListObjects returns the objects under a location (a prefix: "dir" lists
// "dir/…"), keys relative to it, sorted.
func (s *Store) ListObjects(ctx context.Context, loc string) ([]Object, error) {
	b, key, err := s.split(ctx, loc)
	if err != nil {
		return nil, err
	}
	prefix := key
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	var objs []Object
	err = s.do(ctx, "list", loc, func(ctx context.Context, p progress) error {
		objs = objs[:0]
		it := b.List(&blob.ListOptions{Prefix: prefix})
		for {
			obj, err := it.Next(ctx)
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			p.step()
			if !obj.IsDir {
				objs = append(objs, Object{Key: strings.TrimPrefix(obj.Key, prefix), Size: obj.Size})
			}
		}
	})
	return objs, err // the iterator returns keys in lexicographic order
}

// List returns the keys under a location (a prefix: "dir" lists "dir/…"),
// relative to it, sorted.
func (s *Store) List(ctx context.Context, loc string) ([]string, error) {
	objs, err := s.ListObjects(ctx, loc)
	keys := make([]string, len(objs))
	for i, o := range objs {
		keys[i] = o.Key
	}
	return keys, err
}

// ReadFile returns a whole object.
func (s *Store) ReadFile(ctx context.Context, loc string) ([]byte, error) {
	data, _, err := s.ReadVersion(ctx, loc)
	return data, err
}

// Version is one version of an object, as ReadVersion read it: what a
// conditional replace (WriteIf) requires to still be there. The S3 ETag,
// the GCS generation, or for file:// and mem:// (which have neither that
// survives a rewrite) the SHA-256 of the content.
type Version struct {
	etag string
	gen  int64
	sum  [sha256.Size]byte
}

// ReadVersion returns a whole object and its version.
func (s *Store) ReadVersion(ctx context.Context, loc string) ([]byte, Version, error) {
	b, key, err := s.split(ctx, loc)
	if err != nil {
		return nil, Version{}, err
	}
	var data []byte
	var v Version
	err = s.do(ctx, "read", loc, func(ctx context.Context, p progress) error {
		r, err := b.NewReader(ctx, key, nil)
		if err != nil {
			return err
		}
		defer r.Close()
		data, err = io.ReadAll(progressReader{r, p})
		if err != nil {
			return err
		}
		v = Version{sum: sha256.Sum256(data)}
		var out s3.GetObjectOutput
		if r.As(&out) && out.ETag != nil {
			v.etag = *out.ETag
		}
		var gr *storage.Reader
		if r.As(&gr) && gr != nil {
			v.gen = gr.Attrs.Generation
		}
		return nil
	})
	return data, v, err
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
	err = s.doResumable(ctx, "read", loc, func() int64 { return done }, func(ctx context.Context, p progress) error {
		r, err := b.NewRangeReader(ctx, key, done, -1, nil)
		if err != nil {
			return err
		}
		defer r.Close()
		p.touch()
		if size < 0 {
			size = r.Size() // the whole object's, whatever the range
		}
		n, err := io.Copy(w, progressReader{r, p})
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
// with ErrExists when the object is already there (as WriteIf without a
// version).
func (s *Store) Upload(ctx context.Context, loc, path string, ifNotExist bool) error {
	if ifNotExist {
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return s.WriteIf(ctx, loc, data, nil)
	}
	b, key, err := s.split(ctx, loc)
	if err != nil {
		return err
	}
	err = s.do(ctx, "write", loc, func(ctx context.Context, p progress) error {
		f, err := os.Open(path)
		if err != nil {
			return permanent{err}
		}
		defer f.Close()
		return b.Upload(ctx, key, progressReader{f, p}, writerOptions(key, nil))
	})
	var p permanent
	if errors.As(err, &p) {
		return p.error
	}
	return err
}

// WriteFile writes data to loc; with ifNotExist only when there is no
// object there yet (WriteIf without a version).
func (s *Store) WriteFile(ctx context.Context, loc string, data []byte, ifNotExist bool) error {
	if ifNotExist {
		return s.WriteIf(ctx, loc, data, nil)
	}
	b, key, err := s.split(ctx, loc)
	if err != nil {
		return err
	}
	return s.do(ctx, "write", loc, func(ctx context.Context, p progress) error {
		err := b.WriteAll(ctx, key, data, writerOptions(key, nil))
		if err == nil {
			p.bytes(len(data))
		}
		return err
	})
}

// WriteIf writes data to loc on a condition, atomically with respect to
// every other conditional writer: with prev nil, only when no object is
// there (S3 If-None-Match: *, GCS generation 0, link(2) for file://); with
// prev, only when the object is still the version prev (S3 If-Match on
// its ETag, a GCS generation match, for file:// and mem:// the same
// content under a lock). Otherwise it fails with ErrExists and writes
// nothing.
//
// A retried attempt can fail the condition because its own earlier
// attempt succeeded (the answer was lost): the caller tells by reading
// the object back.
func (s *Store) WriteIf(ctx context.Context, loc string, data []byte, prev *Version) error {
	b, key, err := s.split(ctx, loc)
	if err != nil {
		return err
	}
	scheme, _, _ := strings.Cut(loc, "://")
	err = s.do(ctx, "write", loc, func(ctx context.Context, p progress) error {
		var err error
		switch scheme {
		case "file":
			err = fileWriteIf(filepath.Join("/", filepath.FromSlash(key)), data, prev)
		case "mem":
			err = memWriteIf(ctx, b, key, data, prev)
		}
		if errors.Is(err, errCondition) {
			return permanent{err} // an answer, not a failure: no retry
		}
		switch scheme {
		case "file", "mem":
		default:
			if prev != nil && prev.etag == "" && prev.gen == 0 {
				return permanent{fmt.Errorf("%w: the version of %s is unknown: a conditional replace is impossible", ErrExists, redact(loc))}
			}
			err = b.WriteAll(ctx, key, data, writerOptions(key, &condition{prev: prev, create: prev == nil}))
		}
		if err == nil {
			p.bytes(len(data))
		}
		return err
	})
	var pe permanent
	switch {
	case errors.As(err, &pe) && errors.Is(pe.error, ErrExists):
		return pe.error
	case errors.Is(err, errCondition), gcerrors.Code(err) == gcerrors.FailedPrecondition,
		prev != nil && errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("%w: %s: %w", ErrExists, redact(loc), err)
	}
	return err
}

// condition is what a conditional write requires of the object there.
type condition struct {
	create bool     // none there
	prev   *Version // this version there
}

// errCondition: the local implementations' refusal of a conditional write.
var errCondition = errors.New("the object is not the version the write was conditional on")

// casMu serializes the conditional writes to mem:// buckets of this process.
var casMu sync.Mutex

// memWriteIf is WriteIf for mem:// (in-process: a mutex makes it atomic).
func memWriteIf(ctx context.Context, b *blob.Bucket, key string, data []byte, prev *Version) error {
	casMu.Lock()
	defer casMu.Unlock()
	cur, err := b.ReadAll(ctx, key)
	switch {
	case gcerrors.Code(err) == gcerrors.NotFound:
		if prev != nil {
			return errCondition
		}
	case err != nil:
		return err
	case prev == nil || sha256.Sum256(cur) != prev.sum:
		return errCondition
	}
	return b.WriteAll(ctx, key, data, writerOptions(key, nil))
}

// fileWriteIf is WriteIf for file://. The new content goes to a temporary
// file next to path (<name>.<hex>.tmp, as fileblob names its own), fsynced;
// then, under an flock on the directory (every conditional writer takes
// it), a create links it to path (link(2) fails with EEXIST when path
// exists: atomic whoever else writes) and a replace checks that path still
// holds prev's content and renames it over path. The directory is fsynced.
func fileWriteIf(path string, data []byte, prev *Version) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	var rnd [8]byte
	_, _ = crand.Read(rnd[:])
	tmp := path + "." + hex.EncodeToString(rnd[:]) + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY|syscall.O_NOFOLLOW, 0o640)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := syscall.Flock(int(d.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	defer syscall.Flock(int(d.Fd()), syscall.LOCK_UN)
	if prev == nil {
		if err := os.Link(tmp, path); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return errCondition
			}
			return err
		}
	} else {
		cur, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) || err == nil && sha256.Sum256(cur) != prev.sum {
			return errCondition
		}
		if err != nil {
			return err
		}
		if err := os.Rename(tmp, path); err != nil {
			return err
		}
	}
	if err := d.Sync(); err != nil && !errors.Is(err, fs.ErrInvalid) {
		return err
	}
	return nil
}

// writerOptions are the options of every write: the content type, the
// condition (nil: none), and for file:// buckets the mode of the new file
// (0640, as a local --out writes; fileblob would leave 0666 less umask).
func writerOptions(key string, c *condition) *blob.WriterOptions {
	return &blob.WriterOptions{IfNotExist: c != nil && c.create, ContentType: contentType(key),
		BeforeWrite: func(as func(any) bool) error {
			var f *os.File
			if as(&f) {
				return f.Chmod(0o640)
			}
			if c == nil || c.prev == nil {
				return nil
			}
			var in *transfermanager.UploadObjectInput
			if c.prev.etag != "" && as(&in) {
				in.IfMatch = aws.String(c.prev.etag)
			}
			var oh **storage.ObjectHandle
			if c.prev.gen != 0 && as(&oh) {
				*oh = (*oh).If(storage.Conditions{GenerationMatch: c.prev.gen})
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

// ErrExists: a conditional write found the object already there (a
// create), or no longer the version it was conditional on (a replace).
var ErrExists = errors.New("object already exists or changed")

// ErrDenied: the store refused access (S3 AccessDenied, HTTP 403): the
// identity the job runs as lacks a permission. Never retried.
var ErrDenied = errors.New("object storage: access denied")

// ErrConfig: the store cannot be used as configured: credentials missing,
// invalid or expired, a server certificate the client does not trust, a
// bucket URL that cannot be opened, a request the store refuses as made
// (a wrong region, a malformed name, an unsupported method). Never
// retried.
var ErrConfig = errors.New("object storage: not usable as configured")

// ErrNoBucket: the bucket does not exist (an input that is missing, or an
// output configured wrongly: the caller decides). Never retried.
var ErrNoBucket = errors.New("object storage: no such bucket")

// ErrStalled: an attempt made no progress for Retry.Idle, moved less than
// Retry.Floor in a window, or outlived Retry.Limit (transient: retried).
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
	err = s.do(ctx, "delete", loc, func(ctx context.Context, _ progress) error { return b.Delete(ctx, key) })
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
