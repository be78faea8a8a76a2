//go:build purego || !amd64

package kernels

// Implementation reports which Dot implementation this process uses.
func Implementation() string { return "generic" }
