package match

// ScoringVersion names the bits of the scores: two builds with the same
// ScoringVersion give every pair the same float32 score and the same
// compatibility, bit for bit, on every CPU. Bump it whenever a change may
// alter any pair's bits (a kernel's operation order, DistanceFromA, the
// trait dot product's blocks, total's rounding, a filter's boundary): an
// incremental run (`run --incremental`) keeps the scores of unchanged pairs
// from the previous night's tables only when that night's manifest records
// the same ScoringVersion, and rescores everything otherwise.
//
// History: 1, the scores up to the restructure of issue 14; 2, main's
// lane-friendly asin in kernels.DistanceFromA (distances and proximity may
// differ in the last bit) and the AVX-512 ScoreRow wired into the tile loop.
const ScoringVersion = 1
