// Package storetest runs an in-process S3 server (gofakes3) behind a fault
// injector, for tests of code that reads and writes object storage: 503s,
// bodies cut short with the connection dropped, slow, stalled and
// trickling responses, answers lost after the work was done, and refusals
// (access denied, unknown access key, a wrong region, a bad request, an
// unimplemented feature, a missing bucket).
package storetest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// Fault is what the injector does to one request.
type Fault int

// The faults.
const (
	Pass      Fault = iota
	Err503          // 503 SlowDown, before the real server sees the request
	Truncate        // the real response, cut to half its body, connection dropped
	Slow            // the real response after Delay
	Stall           // no answer at all until the client gives up or the server closes
	StallBody       // the real headers and half the body, then nothing until the client gives up
	Deny            // 403 AccessDenied: the identity lacks a permission
	BadKey          // 403 InvalidAccessKeyId: the credentials are wrong
	// LoseAnswer lets the real server do the request, then answers 503:
	// the store did the work, the client never heard (S3 documents that a
	// failed request "may have succeeded").
	LoseAnswer
	Trickle        // the real response, its body one byte every TrickleDelay
	Redirect       // 301 PermanentRedirect: the bucket is in another region
	BadRequest     // 400 InvalidRequest: a request the store refuses as made
	NotImplemented // 501 NotImplemented: a method or header the store does not support
	NoBucket       // 404 NoSuchBucket: the bucket does not exist
)

// FakeS3 is an in-process S3 server (gofakes3) behind a fault injector.
type FakeS3 struct {
	URL      string // s3:// URL of the bucket, with the endpoint parameters
	requests atomic.Int64
	mu       sync.Mutex
	plan     func(n int64, r *http.Request) Fault // nil: pass everything
	Delay    time.Duration
	// TrickleDelay is the pause after every body byte of a Trickle answer.
	TrickleDelay time.Duration
}

// SetPlan replaces the fault plan; n counts requests from 1.
func (f *FakeS3) SetPlan(plan func(n int64, r *http.Request) Fault) {
	f.mu.Lock()
	f.plan = plan
	f.mu.Unlock()
	f.requests.Store(0)
}

// Requests is the number of requests since the last SetPlan.
func (f *FakeS3) Requests() int64 { return f.requests.Load() }

// NewFakeS3 starts the server with one bucket and sets the AWS environment
// (static credentials, no instance metadata) for the test.
func NewFakeS3(t testing.TB, bucket string) *FakeS3 { return newFakeS3(t, bucket, false) }

// NewFakeS3TLS is NewFakeS3 behind HTTPS with a self-signed certificate that
// clients do not trust: every request fails certificate verification.
func NewFakeS3TLS(t testing.TB, bucket string) *FakeS3 { return newFakeS3(t, bucket, true) }

func newFakeS3(t testing.TB, bucket string, useTLS bool) *FakeS3 {
	t.Helper()
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	be := s3mem.New()
	if err := be.CreateBucket(bucket); err != nil {
		t.Fatal(err)
	}
	f := &FakeS3{Delay: 50 * time.Millisecond, TrickleDelay: 20 * time.Millisecond}
	real := gofakes3.New(be).Server()
	closing := make(chan struct{}) // stalled handlers return when the test ends
	s3err := func(w http.ResponseWriter, code int, name, msg string) {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(code)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message></Error>`, name, msg)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := f.requests.Add(1)
		f.mu.Lock()
		plan := f.plan
		f.mu.Unlock()
		what := Pass
		if plan != nil {
			what = plan(n, r)
		}
		switch what {
		case Err503:
			s3err(w, http.StatusServiceUnavailable, "SlowDown", "Please reduce your request rate.")
			return
		case Deny:
			s3err(w, http.StatusForbidden, "AccessDenied", "Access Denied")
			return
		case BadKey:
			s3err(w, http.StatusForbidden, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")
			return
		case Redirect:
			s3err(w, http.StatusMovedPermanently, "PermanentRedirect", "The bucket you are attempting to access must be addressed using the specified endpoint.")
			return
		case BadRequest:
			s3err(w, http.StatusBadRequest, "InvalidRequest", "Invalid Request")
			return
		case NotImplemented:
			s3err(w, http.StatusNotImplemented, "NotImplemented", "A header you provided implies functionality that is not implemented.")
			return
		case NoBucket:
			s3err(w, http.StatusNotFound, "NoSuchBucket", "The specified bucket does not exist")
			return
		case LoseAnswer:
			real.ServeHTTP(httptest.NewRecorder(), r)
			s3err(w, http.StatusServiceUnavailable, "SlowDown", "Please reduce your request rate.")
			return
		case Trickle:
			rec := httptest.NewRecorder()
			real.ServeHTTP(rec, r)
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			for _, c := range rec.Body.Bytes() {
				if _, err := w.Write([]byte{c}); err != nil {
					return
				}
				w.(http.Flusher).Flush()
				select {
				case <-time.After(f.TrickleDelay):
				case <-r.Context().Done():
					return
				case <-closing:
					return
				}
			}
			return
		case Slow:
			time.Sleep(f.Delay)
		case Stall:
			select {
			case <-r.Context().Done():
			case <-closing:
			}
			return
		case StallBody:
			rec := httptest.NewRecorder()
			real.ServeHTTP(rec, r)
			body := rec.Body.Bytes()
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.WriteHeader(rec.Code)
			w.Write(body[:len(body)/2])
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
			case <-closing:
			}
			panic(http.ErrAbortHandler)
		case Truncate:
			rec := httptest.NewRecorder()
			real.ServeHTTP(rec, r)
			body := rec.Body.Bytes()
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.WriteHeader(rec.Code)
			w.Write(body[:len(body)/2])
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler) // drops the connection mid-body
		}
		// gofakes3 ignores If-Match on GET; S3 answers 412 when the
		// object's ETag differs (the store pins a reader's version so).
		if m := r.Header.Get("If-Match"); m != "" && r.Method == http.MethodGet {
			head := r.Clone(r.Context())
			head.Method = http.MethodHead
			head.Header.Del("Range")
			head.Header.Del("If-Match")
			rec := httptest.NewRecorder()
			real.ServeHTTP(rec, head)
			if rec.Code == http.StatusOK && rec.Header().Get("ETag") != m {
				s3err(w, http.StatusPreconditionFailed, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold")
				return
			}
		}
		real.ServeHTTP(w, r)
	}))
	if useTLS {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(closing) }) // runs before srv.Close, which waits for handlers
	q := url.Values{
		"endpoint":       {srv.URL},
		"use_path_style": {"true"},
		"disable_https":  {"true"},
		"region":         {"us-east-1"},
	}
	if useTLS {
		q.Del("disable_https")
	}
	f.URL = "s3://" + bucket + "?" + q.Encode()
	return f
}

// FirstGetOnly is a plan that hits only object reads (GET of a key, not
// listings), and only the first attempt of each range, so that every read
// succeeds on its retry.
func FirstGetOnly(what Fault) func(int64, *http.Request) Fault {
	var mu sync.Mutex
	seen := map[string]bool{}
	return func(_ int64, r *http.Request) Fault {
		if r.Method != http.MethodGet || r.URL.Query().Has("list-type") || strings.Count(r.URL.Path, "/") < 2 {
			return Pass
		}
		k := r.URL.Path + " " + r.Header.Get("Range")
		mu.Lock()
		defer mu.Unlock()
		if seen[k] {
			return Pass
		}
		seen[k] = true
		return what
	}
}
