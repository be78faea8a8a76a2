package read

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"

	"github.com/osmosis/batchmatch/kernels"
)

// DigestSize is the size of a member digest (Population.Digests).
const DigestSize = 16

// Digest identifies everything scoring reads of one member.
type Digest [DigestSize]byte

// Digests returns, for every member, the first 16 bytes of a SHA-256 over
// salt and everything a pair's compatibility and score read of the member:
// id, gender, seeking, age at the as-of date, accepted ages, location (as
// the precomputed GeoPoint and haversine term), max_km, the unit trait,
// health flag and HLA words, the bit-sliced questionnaire, and the ids of
// the members it is blocked with. Two members whose digests are equal on
// two nights (same D, Q and weights) score every pair between them
// bit-identically on both nights: this is what an incremental run compares
// (pipeline, --incremental). The digest reveals no value; the salt keeps
// digests of pseudonymized exports apart from internal ones.
func (p *Population) Digests(salt []byte, workers int) []Digest {
	out := make([]Digest, p.N)
	workers = max(workers, 1)
	var wg sync.WaitGroup
	chunk := (p.N + workers - 1) / max(workers, 1)
	for lo := 0; lo < p.N; lo += max(chunk, 1) {
		hi := min(lo+chunk, p.N)
		wg.Go(func() {
			h := sha256.New()
			var buf []byte
			D, H, QS := p.D, kernels.HLAWords, kernels.QMaskWords*p.QW
			for i := lo; i < hi; i++ {
				h.Reset()
				buf = buf[:0]
				buf = append(buf, salt...)
				buf = binary.LittleEndian.AppendUint64(buf, uint64(p.ID[i]))
				buf = append(buf, p.Gender[i], p.Seeking[i])
				buf = binary.LittleEndian.AppendUint16(buf, p.Age[i])
				buf = binary.LittleEndian.AppendUint16(buf, p.AgeMin[i])
				buf = binary.LittleEndian.AppendUint16(buf, p.AgeMax[i])
				buf = append(buf, asBytes(p.Geo[i:i+1])...)
				buf = append(buf, asBytes(p.HavMax[i:i+1])...)
				buf = append(buf, asBytes(p.MaxKm[i:i+1])...)
				buf = append(buf, asBytes(p.Trait[i*D:(i+1)*D])...)
				buf = append(buf, asBytes(p.Health[i:i+1])...)
				buf = append(buf, asBytes(p.HLA[i*H:(i+1)*H])...)
				buf = append(buf, asBytes(p.QBits[i*QS:(i+1)*QS])...)
				if p.Blocked != nil {
					buf = binary.LittleEndian.AppendUint32(buf, uint32(len(p.Blocked[i])))
					for _, j := range p.Blocked[i] {
						buf = binary.LittleEndian.AppendUint64(buf, uint64(p.ID[j]))
					}
				} else {
					buf = binary.LittleEndian.AppendUint32(buf, 0)
				}
				h.Write(buf)
				var sum [sha256.Size]byte
				copy(out[i][:], h.Sum(sum[:0]))
			}
		})
	}
	wg.Wait()
	return out
}
