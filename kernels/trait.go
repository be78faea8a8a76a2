package kernels

var traitRowImpl = traitRowGeneric

// TraitScoreRow scores a row of TileWidth pairs on the trait component
// alone, s = float32(w·s_t / den) with s_t = (1 + dot)/2 clamped to [0, 1]
// (a NaN dot counts as 0), writes the scores to out, and returns the mask of
// pairs whose score reaches minA or minB[j]: the pairs that may enter the
// query's or the candidate's top-K heap. When the other weighted components
// are absent this is the whole score, so the scalar code only sees those.
//
//	for j := range TileWidth {
//		st := (1 + float64(dots[j])) * 0.5
//		if !(st > 0) { st = 0 }
//		if !(st < 1) { st = 1 }
//		out[j] = float32(w * st / den)   // each operation rounded, no FMA
//		if out[j] >= minA || out[j] >= minB[j] { beat |= 1 << j }
//	}
func TraitScoreRow(out, dots *[TileWidth]float32, w, den float64, minA float32, minB *[TileWidth]float32) uint64 {
	return traitRowImpl(out, dots, w, den, minA, minB)
}

func traitRowGeneric(out, dots *[TileWidth]float32, w, den float64, minA float32, minB *[TileWidth]float32) (beat uint64) {
	for j := range TileWidth {
		st := float64(1+float64(dots[j])) * 0.5
		if !(st > 0) {
			st = 0
		}
		if !(st < 1) {
			st = 1
		}
		s := float32(float64(w*st) / den)
		out[j] = s
		if s >= minA || s >= minB[j] {
			beat |= 1 << j
		}
	}
	return beat
}
