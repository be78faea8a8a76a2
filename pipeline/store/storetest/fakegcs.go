package storetest

import (
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/fsouza/fake-gcs-server/fakestorage"
)

// NewFakeGCS starts an in-process GCS server (fake-gcs-server) with one
// bucket, points the GCS client at it for the test (STORAGE_EMULATOR_HOST)
// and returns the gs:// URL of the bucket. It injects no faults.
func NewFakeGCS(t testing.TB, bucket string) string {
	t.Helper()
	// The server routes object downloads by the Host header (PublicHost),
	// so it needs its own address before it starts: take a free port.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{
		Scheme: "http", Host: "127.0.0.1", Port: uint16(port), PublicHost: fmt.Sprintf("127.0.0.1:%d", port),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: bucket})
	t.Setenv("STORAGE_EMULATOR_HOST", strings.TrimPrefix(srv.URL(), "http://")) // host:port
	return "gs://" + bucket
}
