package failure

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"

	"github.com/osmosis/batchmatch/pipeline/store"
)

// TestKind: a permanent cause anywhere in the chain outranks the generic
// kind of the operation; decisions stand; an error of no kind has none.
func TestKind(t *testing.T) {
	perm := &os.PathError{Op: "open", Path: "x", Err: syscall.EACCES}
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"permission under NoInput", FileError(NoInput, "x", "", perm), Permission},
		{"permission under IO", fmt.Errorf("%w: %w", IO, perm), Permission},
		{"read-only file system", fmt.Errorf("%w: %w", IO, &os.PathError{Op: "open", Path: "x", Err: syscall.EROFS}), Permission},
		{"too many open files", FileError(NoInput, "x", "", &os.PathError{Op: "open", Path: "x", Err: syscall.EMFILE}), System},
		{"a full disk stays transient", fmt.Errorf("%w: %w", IO, &os.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}), IO},
		{"missing", FileError(NoInput, "x", "", &os.PathError{Op: "open", Path: "x", Err: syscall.ENOENT}), NoInput},
		{"usage stands", Usagef("x"), Usage},
		{"a missing bucket of an input", fmt.Errorf("%w: listing: %w", NoInput, store.ErrNoBucket), NoInput},
		{"a missing bucket of the output", fmt.Errorf("%w: uploading: %w", IO, store.ErrNoBucket), Config},
		{"an invalid store setting", fmt.Errorf("%w: bad", store.ErrSetting), Usage},
		{"locked stands", fmt.Errorf("%w: held", Locked), Locked},
		{"no kind", errors.New("boom"), nil},
	} {
		if got := Kind(tc.err); got != tc.want {
			t.Errorf("%s: Kind = %v, want %v", tc.name, got, tc.want)
		}
	}
}
