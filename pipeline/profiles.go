package pipeline

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/osmosis/batchmatch/pipeline/failure"
	"github.com/osmosis/batchmatch/pipeline/profile"
)

// Reject is one quarantined input row (the rejects table, spec §4).
type Reject struct {
	File   string
	Row    int64
	UserID *int64
	Reason string
}

// dims are the trait width D and question count Q of a run.
type dims struct{ D, Q int }

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
func checkProfileSchema(pf *parquetFile) (fixed dims, err error) {
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

// lengthHistogram counts the lengths of the trait and question columns of a
// file whose schema does not fix them, for the "most common length" rule:
// over the rows whose member is not suppressed (suppressed rows decide
// nothing, spec v1.1), D over trait and Q over answers, accept and
// importance together. A row whose user_id is null or out of range cannot
// be suppressed and counts.
func lengthHistogram(ctx context.Context, pf *parquetFile, needD, needQ bool, suppress map[int64]struct{}, hd, hq map[int]int64) error {
	cols := []string{profile.UserID}
	if needD {
		cols = append(cols, profile.Trait)
	}
	if needQ {
		cols = append(cols, profile.Answers, profile.Accept, profile.Importance)
	}
	return pf.records(ctx, cols, func(rec arrow.RecordBatch) error {
		idArr := column(rec, profile.UserID)
		ids, err := intAccessor(idArr)
		if err != nil {
			return failure.FileError(failure.BadData, pf.path, profile.UserID, err)
		}
		suppressed := func(i int) bool {
			if len(suppress) == 0 || idArr.IsNull(i) {
				return false
			}
			id, fits := ids(i)
			_, gone := suppress[id]
			return fits && gone
		}
		var fl *floatList
		if needD {
			if fl, err = newFloatList(column(rec, profile.Trait)); err != nil {
				return failure.FileError(failure.BadData, pf.path, profile.Trait, err)
			}
		}
		var qget [3]func(int) []byte
		var qarr [3]arrow.Array
		if needQ {
			for k, c := range []string{profile.Answers, profile.Accept, profile.Importance} {
				qarr[k] = column(rec, c)
				if qget[k], err = bytesAccessor(qarr[k]); err != nil {
					return failure.FileError(failure.BadData, pf.path, c, err)
				}
			}
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			if suppressed(i) {
				continue
			}
			if fl != nil && !fl.list.IsNull(i) && fl.length(i) > 0 { // an empty trait has no width
				hd[fl.length(i)]++
			}
			if needQ {
				for k := range qarr {
					if !qarr[k].IsNull(i) {
						hq[len(qget[k](i))]++
					}
				}
			}
		}
		return nil
	})
}

// mostCommon returns the most frequent key (ties: the smaller), or 0.
func mostCommon(h map[int]int64) int {
	best, bestN := 0, int64(0)
	for k, n := range h {
		if n > bestN || (n == bestN && k < best) {
			best, bestN = k, n
		}
	}
	return best
}

// rowReader decodes and validates the rows of one record batch.
type rowReader struct {
	d        dims
	asOf     time.Time
	asOfDays int64
	suppress map[int64]struct{}

	ids                                 intGetter
	idArr                               arrow.Array
	consent, health                     *array.Boolean
	gender, seeking, ageMin, ageMax     intGetter
	genderA, seekingA, ageMinA, ageMaxA arrow.Array
	birth                               func(int) int64
	birthA                              arrow.Array
	lat, lon, maxKm                     func(int) float64
	latA, lonA, maxKmA                  arrow.Array
	trait                               *floatList
	hla, ans, acc, imp                  func(int) []byte
	hlaA, ansA, accA, impA              arrow.Array
	scratch                             []float32
}

func (rr *rowReader) bind(rec arrow.RecordBatch) (string, error) {
	var err error
	type bindInt struct {
		name string
		get  *intGetter
		arr  *arrow.Array
	}
	for _, b := range []bindInt{
		{profile.UserID, &rr.ids, &rr.idArr}, {profile.Gender, &rr.gender, &rr.genderA},
		{profile.Seeking, &rr.seeking, &rr.seekingA}, {profile.AgeMin, &rr.ageMin, &rr.ageMinA},
		{profile.AgeMax, &rr.ageMax, &rr.ageMaxA},
	} {
		*b.arr = column(rec, b.name)
		if *b.get, err = intAccessor(*b.arr); err != nil {
			return b.name, err
		}
	}
	var ok bool
	if rr.consent, ok = column(rec, profile.Consent).(*array.Boolean); !ok {
		return profile.Consent, errors.New("want bool")
	}
	rr.health = nil
	if a := column(rec, profile.HealthConsent); a != nil {
		if rr.health, ok = a.(*array.Boolean); !ok {
			return profile.HealthConsent, errors.New("want bool")
		}
	}
	rr.birthA = column(rec, profile.BirthDate)
	if rr.birth, err = dateAccessor(rr.birthA); err != nil {
		return profile.BirthDate, err
	}
	type bindFloat struct {
		name string
		get  *func(int) float64
		arr  *arrow.Array
	}
	for _, b := range []bindFloat{{profile.Lat, &rr.lat, &rr.latA}, {profile.Lon, &rr.lon, &rr.lonA}, {profile.MaxKm, &rr.maxKm, &rr.maxKmA}} {
		*b.arr = column(rec, b.name)
		if *b.get, err = floatAccessor(*b.arr); err != nil {
			return b.name, err
		}
	}
	if rr.trait, err = newFloatList(column(rec, profile.Trait)); err != nil {
		return profile.Trait, err
	}
	type bindBytes struct {
		name string
		get  *func(int) []byte
		arr  *arrow.Array
	}
	for _, b := range []bindBytes{{profile.HLA, &rr.hla, &rr.hlaA}, {profile.Answers, &rr.ans, &rr.ansA}, {profile.Accept, &rr.acc, &rr.accA}, {profile.Importance, &rr.imp, &rr.impA}} {
		*b.arr = column(rec, b.name)
		if *b.get, err = bytesAccessor(*b.arr); err != nil {
			return b.name, err
		}
	}
	return "", nil
}

// smallInt reads a uint8-typed column value: null, out of the uint8 range or
// above max are reasons.
func smallInt(arr arrow.Array, get intGetter, i int, name string, max int64) (uint8, string) {
	if arr.IsNull(i) {
		return 0, "null_" + name
	}
	v, fits := get(i)
	if !fits || v < 0 || v > max {
		return 0, name + "_out_of_range"
	}
	return uint8(v), ""
}

// row validates row i of the bound batch and appends it to c when valid. It
// returns the reject reason ("" when valid) and whether the member is suppressed.
func (rr *rowReader) row(c *chunk, i int, fileRow int64, path string) {
	if rr.idArr.IsNull(i) {
		c.rejects = append(c.rejects, Reject{File: path, Row: fileRow, Reason: "null_user_id"})
		return
	}
	id, fits := rr.ids(i)
	if !fits {
		c.rejects = append(c.rejects, Reject{File: path, Row: fileRow, Reason: "user_id_out_of_range"})
		return
	}
	if _, gone := rr.suppress[id]; gone {
		c.suppressed++
		return
	}
	reason := rr.validate(c, i)
	if reason != "" {
		c.rejects = append(c.rejects, Reject{File: path, Row: fileRow, UserID: &id, Reason: reason})
		return
	}
	c.rows = append(c.rows, fileRow)
	c.id = append(c.id, id)
}

// validate checks every column of row i in the spec's order and, when all
// pass, appends the non-id columns to c; id and row are appended by the caller.
func (rr *rowReader) validate(c *chunk, i int) string {
	consent := rr.consent.IsValid(i) && rr.consent.Value(i)
	health := rr.health != nil && rr.health.IsValid(i) && rr.health.Value(i)
	gender, r := smallInt(rr.genderA, rr.gender, i, profile.Gender, 2)
	if r != "" {
		return r
	}
	seeking, r := smallInt(rr.seekingA, rr.seeking, i, profile.Seeking, 7)
	if r != "" {
		return r
	}
	if seeking == 0 {
		return "seeking_out_of_range"
	}
	if rr.birthA.IsNull(i) {
		return "null_birth_date"
	}
	birthDays := rr.birth(i)
	if birthDays > rr.asOfDays {
		return "birth_date_after_as_of"
	}
	ageMin, r := smallInt(rr.ageMinA, rr.ageMin, i, profile.AgeMin, 255)
	if r != "" {
		return r
	}
	ageMax, r := smallInt(rr.ageMaxA, rr.ageMax, i, profile.AgeMax, 255)
	if r != "" {
		return r
	}
	if ageMin > ageMax {
		return "age_min_above_age_max"
	}
	if rr.latA.IsNull(i) {
		return "null_lat"
	}
	if lat := rr.lat(i); !(lat >= -90 && lat <= 90) {
		return "lat_out_of_range"
	}
	if rr.lonA.IsNull(i) {
		return "null_lon"
	}
	if lon := rr.lon(i); !(lon >= -180 && lon <= 180) {
		return "lon_out_of_range"
	}
	if rr.maxKmA.IsNull(i) {
		return "null_max_km"
	}
	// max_km is checked as stored (spec v1.1): a float32, finite and > 0
	// after the conversion (1e-50 rounds to 0, 1e300 to +Inf).
	maxKm := float32(rr.maxKm(i))
	if !(maxKm > 0) || math.IsInf(float64(maxKm), 0) {
		return "max_km_out_of_range"
	}
	if rr.trait.list.IsNull(i) {
		return "null_trait"
	}
	if r := rr.trait.read(i, rr.scratch); r != "" {
		return r
	}
	var hla []byte
	if !rr.hlaA.IsNull(i) {
		hla = rr.hla(i)
		if len(hla) != profile.HLABytes {
			return "hla_wrong_length"
		}
	}
	health = health && hla != nil
	var qcols [3][]byte
	for k, q := range []struct {
		name string
		arr  arrow.Array
		get  func(int) []byte
		max  byte
	}{{profile.Answers, rr.ansA, rr.ans, 8}, {profile.Accept, rr.accA, rr.acc, 255}, {profile.Importance, rr.impA, rr.imp, 4}} {
		if q.arr.IsNull(i) {
			return "null_" + q.name
		}
		v := q.get(i)
		if len(v) != rr.d.Q {
			return q.name + "_wrong_length"
		}
		for _, b := range v {
			if b > q.max {
				return q.name + "_out_of_range"
			}
		}
		qcols[k] = v
	}
	// Every check passed: append the columns.
	c.consent = append(c.consent, consent)
	c.health = append(c.health, health)
	c.gender = append(c.gender, gender)
	c.seeking = append(c.seeking, seeking)
	c.age = append(c.age, ageAt(birthDays, rr.asOf))
	c.ageMin = append(c.ageMin, ageMin)
	c.ageMax = append(c.ageMax, ageMax)
	c.lat = append(c.lat, rr.lat(i))
	c.lon = append(c.lon, rr.lon(i))
	c.maxKm = append(c.maxKm, maxKm)
	c.trait = append(c.trait, rr.scratch...)
	if hla == nil {
		hla = make([]byte, profile.HLABytes)
	}
	c.hla = append(c.hla, hla...)
	c.ans = append(c.ans, qcols[0]...)
	c.acc = append(c.acc, qcols[1]...)
	c.imp = append(c.imp, qcols[2]...)
	return ""
}

// ageAt is the age in whole years at asOf of someone born birthDays after
// the epoch (spec §2). It is not clamped to the uint8 range of the age
// columns: someone aged 300 must fail every accepted range, not pass
// age_max = 255. (Birth dates after asOf are rejected before this.)
func ageAt(birthDays int64, asOf time.Time) uint16 {
	b := time.Unix(birthDays*86400, 0).UTC()
	age := asOf.Year() - b.Year()
	if asOf.Month() < b.Month() || (asOf.Month() == b.Month() && asOf.Day() < b.Day()) {
		age--
	}
	return uint16(min(max(age, 0), 65535))
}

// readProfileFile decodes and validates every row of pf into a chunk.
func readProfileFile(ctx context.Context, pf *parquetFile, fileIdx int, d dims, asOf time.Time, suppress map[int64]struct{}) (*chunk, error) {
	// Buffers are sized from the footer's row count only as far as the
	// file's bytes could hold that many rows: a claim of billions of rows
	// must not allocate for them (the decoder holds every row group to its
	// claim, records). A row's values take about 4·D + 32 + 3·Q bytes in
	// memory and, traits being incompressible floats, not much less in a
	// real file; twice the file's size bounds what is reserved, and append
	// grows past it for a file that compresses better.
	perRow := int64(4*d.D + profile.HLABytes + 3*d.Q + 64)
	n := int(min(max(pf.numRows(), 0), 1024+2*pf.size/perRow))
	c := &chunk{file: fileIdx}
	c.rows = make([]int64, 0, n)
	c.id = make([]int64, 0, n)
	c.trait = make([]float32, 0, n*d.D)
	c.hla = make([]byte, 0, n*profile.HLABytes)
	c.ans = make([]byte, 0, n*d.Q)
	c.acc = make([]byte, 0, n*d.Q)
	c.imp = make([]byte, 0, n*d.Q)
	rr := &rowReader{
		d: d, asOf: asOf, asOfDays: asOf.Unix() / 86400, suppress: suppress,
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
	if fileRow != pf.numRows() {
		return nil, failure.FileError(failure.BadData, pf.path, "", fmt.Errorf("decoded %d rows, footer says %d", fileRow, pf.numRows()))
	}
	return c, nil
}
