package read

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/osmosis/batchmatch/pipeline/failure"
	"github.com/osmosis/batchmatch/pipeline/profile"
)

// Reject is one quarantined input row (the rejects table, spec §4).
type Reject struct {
	File   string
	Row    int64
	UserID *int64 // nil: unreadable
	Reason profile.Reason
}

// widths are the trait width D and question count Q of a run.
type widths struct{ D, Q int }

// chunk holds the valid rows of one profile file, column by column, in file
// order, plus its rejects. Traits are normalised (floatList.read).
type chunk struct {
	file       int
	read       int64 // rows in the file
	suppressed int64 // rows dropped because their member is suppressed
	rows       []int64
	id         []int64
	consent    []bool
	health     []bool // health_consent true and hla not null
	gender     []uint8
	seeking    []uint8
	age        []uint16
	ageMin     []uint8
	ageMax     []uint8
	lat, lon   []float64
	maxKm      []float32
	trait      []float32 // len(id)·D, normalised to unit length
	hla        []byte    // len(id)·32
	ans        []byte    // len(id)·Q
	acc        []byte
	imp        []byte
	rejects    []Reject
}

func (c *chunk) valid() int { return len(c.id) }

// checkProfileSchema verifies that pf has every profile column in an accepted
// form and returns the fixed D and Q its schema gives (0 when variable).
func checkProfileSchema(pf *parquetFile) (fixed widths, err error) {
	fixedQ := map[string]int{}
	for _, cs := range profileColumns {
		i, ok := pf.fields[cs.name]
		if !ok {
			if cs.optional {
				continue
			}
			return fixed, failure.FileError(failure.BadData, pf.path, cs.name, errors.New("column is missing"))
		}
		n, err := checkType(cs.kind, pf.schema.Field(i).Type)
		if err != nil {
			return fixed, failure.FileError(failure.BadData, pf.path, cs.name, err)
		}
		switch cs.name {
		case profile.Trait:
			fixed.D = n
			if n == 0 && pf.schema.Field(i).Type.ID() == arrow.FIXED_SIZE_LIST {
				return fixed, failure.FileError(failure.BadData, pf.path, cs.name, errors.New("fixed-size list of width 0"))
			}
		case profile.HLA:
			if n != 0 && n != profile.HLABytes {
				return fixed, failure.FileError(failure.BadData, pf.path, cs.name, fmt.Errorf("fixed_size_binary[%d], want [%d]", n, profile.HLABytes))
			}
		case profile.Answers, profile.Accept, profile.Importance:
			if n != 0 {
				fixedQ[cs.name] = n
			}
		}
	}
	for name, n := range fixedQ {
		if fixed.Q != 0 && fixed.Q != n {
			return fixed, failure.FileError(failure.BadData, pf.path, name, fmt.Errorf("fixed width %d disagrees with another question column's %d", n, fixed.Q))
		}
		fixed.Q = n
	}
	return fixed, nil
}

// readProfileFile decodes and validates every row of pf into a chunk.
// reserveRows is how many rows of pf buffers are sized for: the footer's
// row count only as far as the file's bytes could hold that many rows (a
// claim of billions of rows must not allocate for them; the decoder holds
// every row group to its claim, records). A row's values take about
// 4·D + 32 + 3·Q bytes in memory and, traits being incompressible floats,
// not much less in a real file; twice the file's size bounds what is
// reserved, and append grows past it for a file that compresses better.
func reserveRows(pf *parquetFile, d widths) int {
	perRow := int64(4*d.D + profile.HLABytes + 3*d.Q + 64)
	return int(min(max(pf.numRows(), 0), 1024+2*pf.size/perRow))
}

// readProfileFile reads and validates the rows of pf into a chunk. Its
// valid rows' traits are appended to trait (empty, with room for
// reserveRows rows: a region of the array all files share, see Load).
func readProfileFile(ctx context.Context, pf *parquetFile, fileIdx int, d widths, asOf time.Time, suppress map[int64]struct{}, trait []float32) (*chunk, error) {
	n := reserveRows(pf, d)
	c := &chunk{file: fileIdx}
	c.rows = make([]int64, 0, n)
	c.id = make([]int64, 0, n)
	c.trait = trait[:0]
	if c.trait == nil {
		c.trait = make([]float32, 0, n*d.D)
	}
	c.hla = make([]byte, 0, n*profile.HLABytes)
	c.ans = make([]byte, 0, n*d.Q)
	c.acc = make([]byte, 0, n*d.Q)
	c.imp = make([]byte, 0, n*d.Q)
	rr := &rowReader{
		d: d, asOf: asOf, asOfDays: asOf.Unix() / 86400, suppress: suppress, keep: pf.keep,
		scratch: make([]float32, d.D),
	}
	cols := make([]string, len(profileColumns))
	for i, cs := range profileColumns {
		cols[i] = cs.name
	}
	var fileRow int64
	err := pf.records(ctx, cols, func(rec arrow.RecordBatch) error {
		if col, err := rr.bind(rec); err != nil {
			return failure.FileError(failure.BadData, pf.path, col, err)
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			rr.row(c, i, fileRow, pf.path)
			fileRow++
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	c.read = fileRow
	if fileRow != pf.numRows() && pf.only == nil {
		return nil, failure.FileError(failure.BadData, pf.path, "", fmt.Errorf("decoded %d rows, footer says %d", fileRow, pf.numRows()))
	}
	return c, nil
}
