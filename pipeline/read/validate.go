package read

import (
	"errors"
	"math"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/osmosis/batchmatch/pipeline/profile"
)

// rowReader decodes and validates the rows of one record batch.
type rowReader struct {
	d        widths
	asOf     time.Time
	asOfDays int64
	suppress map[int64]struct{}
	keep     map[int64]bool // when set, only these ids are validated (LoadMembers)

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

// smallInt reads a uint8-typed column value: a null is the reason null, a
// value out of the uint8 range or above max the reason outOfRange.
func smallInt(arr arrow.Array, get intGetter, i int, max int64, null, outOfRange profile.Reason) (uint8, profile.Reason) {
	if arr.IsNull(i) {
		return 0, null
	}
	v, fits := get(i)
	if !fits || v < 0 || v > max {
		return 0, outOfRange
	}
	return uint8(v), ""
}

// row validates row i of the bound batch and appends it to c when valid. It
// returns the reject reason ("" when valid) and whether the member is suppressed.
func (rr *rowReader) row(c *chunk, i int, fileRow int64, path string) {
	if rr.idArr.IsNull(i) {
		c.rejects = append(c.rejects, Reject{File: path, Row: fileRow, Reason: profile.NullUserID})
		return
	}
	id, fits := rr.ids(i)
	if !fits {
		c.rejects = append(c.rejects, Reject{File: path, Row: fileRow, Reason: profile.UserIDOutOfRange})
		return
	}
	if _, gone := rr.suppress[id]; gone {
		c.suppressed++
		return
	}
	if rr.keep != nil && !rr.keep[id] {
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
func (rr *rowReader) validate(c *chunk, i int) profile.Reason {
	consent := rr.consent.IsValid(i) && rr.consent.Value(i)
	health := rr.health != nil && rr.health.IsValid(i) && rr.health.Value(i)
	gender, r := smallInt(rr.genderA, rr.gender, i, 2, profile.NullGender, profile.GenderOutOfRange)
	if r != "" {
		return r
	}
	seeking, r := smallInt(rr.seekingA, rr.seeking, i, 7, profile.NullSeeking, profile.SeekingOutOfRange)
	if r != "" {
		return r
	}
	if seeking == 0 {
		return profile.SeekingOutOfRange
	}
	if rr.birthA.IsNull(i) {
		return profile.NullBirthDate
	}
	birthDays := rr.birth(i)
	if birthDays > rr.asOfDays {
		return profile.BirthDateAfterAsOf
	}
	ageMin, r := smallInt(rr.ageMinA, rr.ageMin, i, 255, profile.NullAgeMin, profile.AgeMinOutOfRange)
	if r != "" {
		return r
	}
	ageMax, r := smallInt(rr.ageMaxA, rr.ageMax, i, 255, profile.NullAgeMax, profile.AgeMaxOutOfRange)
	if r != "" {
		return r
	}
	if ageMin > ageMax {
		return profile.AgeMinAboveMax
	}
	if rr.latA.IsNull(i) {
		return profile.NullLat
	}
	if lat := rr.lat(i); !(lat >= -90 && lat <= 90) {
		return profile.LatOutOfRange
	}
	if rr.lonA.IsNull(i) {
		return profile.NullLon
	}
	if lon := rr.lon(i); !(lon >= -180 && lon <= 180) {
		return profile.LonOutOfRange
	}
	if rr.maxKmA.IsNull(i) {
		return profile.NullMaxKm
	}
	// max_km is checked as stored (spec v1.1): a float32, finite and > 0
	// after the conversion (1e-50 rounds to 0, 1e300 to +Inf).
	maxKm := float32(rr.maxKm(i))
	if !(maxKm > 0) || math.IsInf(float64(maxKm), 0) {
		return profile.MaxKmOutOfRange
	}
	if rr.trait.list.IsNull(i) {
		return profile.NullTrait
	}
	if r := rr.trait.read(i, rr.scratch); r != "" {
		return r
	}
	var hla []byte
	if !rr.hlaA.IsNull(i) {
		hla = rr.hla(i)
		if len(hla) != profile.HLABytes {
			return profile.HLAWrongLength
		}
	}
	health = health && hla != nil
	var qcols [3][]byte
	for k, q := range []struct {
		arr                           arrow.Array
		get                           func(int) []byte
		max                           byte
		null, wrongLength, outOfRange profile.Reason
	}{
		{rr.ansA, rr.ans, 8, profile.NullAnswers, profile.AnswersWrongLength, profile.AnswersOutOfRange},
		{rr.accA, rr.acc, 255, profile.NullAccept, profile.AcceptWrongLength, ""}, // every byte is a mask
		{rr.impA, rr.imp, 4, profile.NullImportance, profile.ImportanceWrongLength, profile.ImportanceOutOfRange},
	} {
		if q.arr.IsNull(i) {
			return q.null
		}
		v := q.get(i)
		if len(v) != rr.d.Q {
			return q.wrongLength
		}
		if q.outOfRange != "" {
			for _, b := range v {
				if b > q.max {
					return q.outOfRange
				}
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
