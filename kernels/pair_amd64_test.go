//go:build !purego

package kernels

func init() {
	if hasScoreRow512 {
		scoreRowImpls = append(scoreRowImpls, scoreRowCase{"avx512", scoreRowAVX512})
		questionsTileImpls = append(questionsTileImpls, questionsTileCase{"avx512", questionsTileAVX512})
	}
}
