package match

import (
	"encoding/json"
	"fmt"
)

// Weights are the component weights of the score (spec §3): non-negative,
// with Trait + Questions + Proximity > 0. Only their ratios matter.
type Weights struct {
	Trait, Questions, Biomarker, Proximity float64
}

// DefaultWeights are the spec's component weights.
var DefaultWeights = Weights{Trait: 0.40, Questions: 0.35, Biomarker: 0.15, Proximity: 0.10}

// MinWeight and MaxWeight bound a non-zero weight: they keep the weighted
// sums from overflowing (1e308 + 1e308) or flushing products to zero
// (5e-324 · 0.3), which would publish scores of 0 or NaN.
const (
	MinWeight = 1e-9
	MaxWeight = 1e9
)

// Array returns the weights in the spec's order: trait, questions,
// biomarker, proximity (the order of --weights and of the manifest).
func (w Weights) Array() [4]float64 {
	return [4]float64{w.Trait, w.Questions, w.Biomarker, w.Proximity}
}

// WeightsOf is the inverse of Array.
func WeightsOf(a [4]float64) Weights {
	return Weights{Trait: a[0], Questions: a[1], Biomarker: a[2], Proximity: a[3]}
}

// String prints the weights as the configuration hash always has: the
// four numbers in the spec's order, as fmt prints a [4]float64.
func (w Weights) String() string { return fmt.Sprint(w.Array()) }

// MarshalJSON writes the weights as the array [trait, questions,
// biomarker, proximity], as manifests always have.
func (w Weights) MarshalJSON() ([]byte, error) { return json.Marshal(w.Array()) }

// UnmarshalJSON reads the array MarshalJSON writes.
func (w *Weights) UnmarshalJSON(b []byte) error {
	var a [4]float64
	if err := json.Unmarshal(b, &a); err != nil {
		return err
	}
	*w = WeightsOf(a)
	return nil
}

// check reports whether the weights can be scored with: each 0 or in
// [MinWeight, MaxWeight], and Trait + Questions + Proximity > 0. The
// options check them (a usage error); the scorer checks again, because a
// NaN or an overflowing weight would make every score NaN or 0.
func (w Weights) check() error {
	for _, x := range w.Array() {
		if x != 0 && !(x >= MinWeight && x <= MaxWeight) {
			return fmt.Errorf("weight %v is neither 0 nor in [%g, %g]", x, float64(MinWeight), float64(MaxWeight))
		}
	}
	if !(w.Trait+w.Questions+w.Proximity > 0) {
		return fmt.Errorf("trait + questions + proximity weights are %v, not positive", w.Trait+w.Questions+w.Proximity)
	}
	return nil
}
