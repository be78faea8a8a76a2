package main

// The image is FROM scratch: no CA certificates. These trust roots (the
// Mozilla set, as packaged by the Go project) are used only when the system
// has none, so that s3:// and gs:// verify their servers from the image;
// on a machine with a CA bundle (or with SSL_CERT_FILE) the system's roots
// still win. Updating the module updates the roots.
import _ "golang.org/x/crypto/x509roots/fallback"
