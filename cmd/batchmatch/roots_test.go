package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTrustRootsWithoutSystemCAs: the binary trusts the roots that S3
// (Amazon Root CA 1) and GCS (GTS Root R1) chain to on a machine with no CA
// certificates at all, as in the FROM scratch image, and still refuses an
// unknown authority. It re-runs the test binary with the system's CA file
// and directory pointed at nothing, so that the compiled-in fallback roots
// are all it has.
func TestTrustRootsWithoutSystemCAs(t *testing.T) {
	if os.Getenv("BATCHMATCH_ROOTS_CHILD") == "1" {
		rootsChild(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestTrustRootsWithoutSystemCAs$", "-test.v")
	cmd.Env = append(os.Environ(), "BATCHMATCH_ROOTS_CHILD=1",
		"SSL_CERT_FILE="+filepath.Join(t.TempDir(), "none.pem"), "SSL_CERT_DIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "fallback roots verified") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

func rootsChild(t *testing.T) {
	at := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	for _, name := range []string{"Amazon_Root_CA_1.pem", "GTS_Root_R1.pem"} {
		b, err := os.ReadFile(filepath.Join("testdata", "roots", name))
		if err != nil {
			t.Fatal(err)
		}
		blk, _ := pem.Decode(b)
		if blk == nil {
			t.Fatalf("%s: no PEM block", name)
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Verify(x509.VerifyOptions{CurrentTime: at}); err != nil {
			t.Errorf("%s (%s) does not verify against the compiled-in roots: %v", name, c.Subject.CommonName, err)
		}
	}
	// an authority in no bundle is still refused
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "not a public CA"},
		NotBefore: at.Add(-time.Hour), NotAfter: at.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	self, _ := x509.ParseCertificate(der)
	var unknown x509.UnknownAuthorityError
	if _, err := self.Verify(x509.VerifyOptions{CurrentTime: at}); !errors.As(err, &unknown) {
		t.Errorf("a self-signed certificate: %v, want an unknown authority", err)
	}
	if !t.Failed() {
		t.Log("fallback roots verified")
	}
}
