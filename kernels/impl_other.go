//go:build purego || !amd64

package kernels

// Implementation reports which kernel implementations this process uses.
func Implementation() string { return "generic" }
