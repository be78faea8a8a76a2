package kernels

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"
)

type filterCase struct {
	name string
	fn   func(q *FilterQuery, c *FilterCands, margin float64) (keep, sure uint64)
}

var filterImpls = []filterCase{{"generic", filterGeneric}}

func randUnit(r *rand.Rand) (x, y, z float64) {
	lat, lon := (r.Float64()-0.5)*math.Pi, (r.Float64()-0.5)*2*math.Pi
	return math.Cos(lat) * math.Cos(lon), math.Cos(lat) * math.Sin(lon), math.Sin(lat)
}

// randFilterTile draws a query and a tile whose values sit on the
// boundaries: equal ages, cosines at the threshold ± margin.
func randFilterTile(r *rand.Rand) (FilterQuery, FilterCands) {
	var q FilterQuery
	var c FilterCands
	q.Age, q.AgeMin, q.AgeMax = int32(18+r.IntN(60)), int32(18+r.IntN(30)), int32(30+r.IntN(60))
	q.X, q.Y, q.Z = randUnit(r)
	q.CosT = math.Cos(r.Float64() * 0.3)
	for j := range TileWidth {
		c.Age[j], c.AgeMin[j], c.AgeMax[j] = int32(18+r.IntN(60)), int32(18+r.IntN(30)), int32(30+r.IntN(60))
		switch r.IntN(4) { // boundaries of the age test
		case 0:
			c.Age[j] = q.AgeMin
		case 1:
			c.AgeMax[j] = q.Age
		}
		// near the query: angles around both thresholds
		ang := r.Float64() * 0.4
		x, y, z := randUnit(r)
		// rotate toward the query: mix and renormalise
		f := math.Cos(ang)
		x, y, z = f*q.X+(1-f)*x, f*q.Y+(1-f)*y, f*q.Z+(1-f)*z
		n := math.Sqrt(x*x + y*y + z*z)
		c.X[j], c.Y[j], c.Z[j] = x/n, y/n, z/n
		c.CosT[j] = math.Cos(r.Float64() * 0.3)
		if r.IntN(5) == 0 { // exactly at the threshold
			c.CosT[j] = float64(float64(q.X*c.X[j])+float64(q.Y*c.Y[j])) + float64(q.Z*c.Z[j])
		}
	}
	return q, c
}

// TestFilterTile: every implementation equals the generic one bit for bit,
// on random tiles with boundary values and with NaN/±Inf in every lane of
// every float column; the generic one agrees with a plain float64 reading of
// the filters (keep ⊇ truly near, sure ⊆ truly near, ages exact).
func TestFilterTile(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 42))
	specials := []float64{math.NaN(), math.Inf(1), math.Inf(-1), math.Copysign(0, -1)}
	for _, impl := range filterImpls {
		t.Run(impl.name, func(t *testing.T) {
			for trial := range 3000 {
				q, c := randFilterTile(r)
				margin := []float64{1e-11, 0, 1e-3}[trial%3]
				if trial%4 == 3 { // specials in every lane of one column
					sp := specials[(trial/4)%len(specials)]
					col := (trial / 16) % 5
					for j := range TileWidth {
						if (j+trial)%3 == 0 {
							switch col {
							case 0:
								c.X[j] = sp
							case 1:
								c.Y[j] = sp
							case 2:
								c.Z[j] = sp
							case 3:
								c.CosT[j] = sp
							case 4:
								q.CosT = sp
							}
						}
					}
				}
				k, s := impl.fn(&q, &c, margin)
				wk, ws := filterGeneric(&q, &c, margin)
				if k != wk || s != ws {
					t.Fatalf("trial %d: keep %064b sure %064b, generic %064b %064b", trial, k, s, wk, ws)
				}
				if s&^k != 0 {
					t.Fatalf("trial %d: sure not a subset of keep", trial)
				}
				if trial%4 == 3 {
					continue
				}
				for j := range TileWidth {
					ages := c.Age[j] >= q.AgeMin && c.Age[j] <= q.AgeMax && q.Age >= c.AgeMin[j] && q.Age <= c.AgeMax[j]
					cos := q.X*c.X[j] + q.Y*c.Y[j] + q.Z*c.Z[j]
					thr := math.Max(q.CosT, c.CosT[j])
					bit := uint64(1) << j
					if !ages && k&bit != 0 {
						t.Fatalf("trial %d: lane %d kept with failing ages", trial, j)
					}
					if ages && cos >= thr+1e-15+margin && s&bit == 0 {
						t.Fatalf("trial %d: lane %d clearly near but not sure", trial, j)
					}
					if ages && cos >= thr-margin+1e-15 && k&bit == 0 {
						t.Fatalf("trial %d: lane %d near but dropped", trial, j)
					}
					if cos < thr-margin-1e-15 && k&bit != 0 {
						t.Fatalf("trial %d: lane %d clearly far but kept", trial, j)
					}
				}
			}
		})
	}
}

func FuzzFilterTile(f *testing.F) {
	f.Add(make([]byte, 64), uint64(1))
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) {
		r := rand.New(rand.NewPCG(seed, 7))
		q, c := randFilterTile(r)
		// overwrite values with fuzz bytes: ages, then float columns
		for i := 0; 4*i+4 <= len(data) && i < TileWidth; i++ {
			c.Age[i] = int32(binary.LittleEndian.Uint32(data[4*i:]))
		}
		for i := 0; 8*i+8 <= len(data) && i < TileWidth; i++ {
			v := math.Float64frombits(binary.LittleEndian.Uint64(data[8*i:]))
			switch i % 4 {
			case 0:
				c.X[i] = v
			case 1:
				c.CosT[i] = v
			case 2:
				c.Z[i] = v
			case 3:
				q.CosT = v
			}
		}
		wk, ws := filterGeneric(&q, &c, 1e-11)
		for _, impl := range filterImpls[1:] {
			if k, s := impl.fn(&q, &c, 1e-11); k != wk || s != ws {
				t.Fatalf("%s: keep %x sure %x, generic %x %x", impl.name, k, s, wk, ws)
			}
		}
	})
}

func BenchmarkFilterTile(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	q, c := randFilterTile(r)
	for _, impl := range filterImpls {
		b.Run(impl.name+"/64", func(b *testing.B) {
			var acc uint64
			for b.Loop() {
				k, s := impl.fn(&q, &c, 1e-11)
				acc += k ^ s
			}
			_ = acc
		})
	}
}
