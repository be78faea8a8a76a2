// Package match is the scoring half of a run: blocking (Block: the
// population ordered and cut into tiles of alike members, so that tile
// pairs that cannot hold a compatible pair are skipped), the fused tile
// loop that filters, scores and keeps each member's top K (TopK, tile.go),
// the one-to-one soulmate assignment (SoulmatesParallel, with the
// sequential Soulmates as its reference), and the explanations support
// asks for (ExplainPair, ExplainMember).
//
// The score of a pair is defined in one place, pair.go: Pair applies the
// hard filters and computes the components and their weighted mean with
// traitScore, proximity and total; the tiled loop calls the same functions
// (and kernels.TraitScoreRow, which computes total's trait-only case the
// same way) and agrees with Pair bit for bit (TestTiledScoringMatchesPair).
//
// Three things are called a block in this domain and are named apart
// here: blocking is the stage that cuts the population into tiles (and
// 16-member sub-tiles); a blocked pair is the spec's (Population.Blocked:
// two members who never match); a dot cell is the 16×16 square of a tile
// pair's dot products that one kernels.DotTile call computes.
package match
