package read

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"

	flatbuffers "github.com/google/flatbuffers/go"
)

// checkArrowSchema bounds-checks the IPC-serialized Arrow schema that
// pqarrow stores in a Parquet footer under "ARROW:schema", before arrow-go
// decodes it. arrow-go v18.8.0 sizes slices from the flatbuffer's vector
// lengths unchecked (ipc.fieldFromFB: make([]arrow.Field, ChildrenLength())),
// so a corrupt footer of a few bytes can make it allocate tens of GB. Every
// vector must lie inside the buffer, the message body must fit in what
// follows it (ipc's messageReader allocates bodyLength up front: 32 GB for
// another fuzz input), and nesting is limited.
func checkArrowSchema(b64 string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("corrupt ARROW:schema: %v", r)
		}
	}()
	buf, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		if buf, err = base64.RawStdEncoding.DecodeString(b64); err != nil {
			return fmt.Errorf("ARROW:schema is not base64: %w", err)
		}
	}
	off := 0
	if len(buf) >= 4 && binary.LittleEndian.Uint32(buf) == 0xFFFFFFFF { // continuation marker
		off = 4
	}
	if len(buf) < off+4 {
		return errors.New("ARROW:schema too short")
	}
	n := int(int32(binary.LittleEndian.Uint32(buf[off:])))
	off += 4
	if n < 8 || off+n > len(buf) {
		return fmt.Errorf("ARROW:schema message length %d outside its %d bytes", n, len(buf)-off)
	}
	msg := buf[off : off+n]
	v := fbChecker{buf: msg}
	root := v.table(flatbuffers.GetUOffsetT(msg))
	// Message: version 0, header_type 1, header 2, bodyLength 3, custom_metadata 4.
	// arrow-go allocates bodyLength bytes before reading them: a schema
	// message has no body, and any body must fit in the bytes that follow.
	if body := root.GetInt64Slot(flatbuffers.VOffsetT(4+2*3), 0); body < 0 || body > int64(len(buf)-off-n) {
		return fmt.Errorf("corrupt ARROW:schema: message body of %d bytes, %d follow", body, len(buf)-off-n)
	}
	v.keyValues(root, 4)
	hdr, ok := v.child(root, 2)
	if !ok {
		return errors.New("ARROW:schema message has no header")
	}
	// Schema: endianness 0, fields 1, custom_metadata 2, features 3
	v.keyValues(hdr, 2)
	v.vector(hdr, 3, 8)
	v.fields(hdr, 1, 0)
	return v.err
}

type fbChecker struct {
	buf []byte
	err error
}

func (v *fbChecker) fail(format string, args ...any) {
	if v.err == nil {
		v.err = fmt.Errorf("corrupt ARROW:schema: "+format, args...)
	}
}

func (v *fbChecker) table(pos flatbuffers.UOffsetT) flatbuffers.Table {
	if int(pos)+4 > len(v.buf) {
		panic("table outside the buffer")
	}
	return flatbuffers.Table{Bytes: v.buf, Pos: pos}
}

// vector checks field slot's vector of elem-byte elements and returns its
// start and length (0, 0 when absent).
func (v *fbChecker) vector(t flatbuffers.Table, slot int, elem int) (flatbuffers.UOffsetT, int) {
	o := flatbuffers.UOffsetT(t.Offset(flatbuffers.VOffsetT(4 + 2*slot)))
	if o == 0 {
		return 0, 0
	}
	start := t.Vector(o)
	n := t.VectorLen(o)
	if n < 0 || int(start)+n*elem > len(v.buf) {
		v.fail("vector of %d elements at %d overruns %d bytes", n, start, len(v.buf))
		return 0, 0
	}
	return start, n
}

// child returns the table referenced by a field slot.
func (v *fbChecker) child(t flatbuffers.Table, slot int) (flatbuffers.Table, bool) {
	o := flatbuffers.UOffsetT(t.Offset(flatbuffers.VOffsetT(4 + 2*slot)))
	if o == 0 {
		return flatbuffers.Table{}, false
	}
	return v.table(t.Indirect(o + t.Pos)), true
}

func (v *fbChecker) elems(start flatbuffers.UOffsetT, n int, fn func(flatbuffers.Table)) {
	for i := 0; i < n && v.err == nil; i++ {
		p := start + flatbuffers.UOffsetT(4*i)
		fn(v.table(p + flatbuffers.GetUOffsetT(v.buf[p:])))
	}
}

func (v *fbChecker) keyValues(t flatbuffers.Table, slot int) {
	start, n := v.vector(t, slot, 4)
	v.elems(start, n, func(kv flatbuffers.Table) {
		v.vector(kv, 0, 1) // key
		v.vector(kv, 1, 1) // value
	})
}

// fields checks a vector of Field tables: name 0, nullable 1, type_type 2,
// type 3, dictionary 4, children 5, custom_metadata 6.
func (v *fbChecker) fields(t flatbuffers.Table, slot, depth int) {
	if depth > 64 {
		v.fail("fields nested deeper than 64")
		return
	}
	start, n := v.vector(t, slot, 4)
	v.elems(start, n, func(f flatbuffers.Table) {
		v.vector(f, 0, 1)
		v.keyValues(f, 6)
		v.fields(f, 5, depth+1)
	})
}
