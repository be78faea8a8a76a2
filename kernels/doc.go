// Package kernels holds the pure compute of batchmatch's pair scoring: trait
// dot products, questionnaire satisfaction, HLA popcounts and great-circle
// distance. It works on flat slices only and knows nothing of Parquet, Arrow
// or the pipeline that feeds it.
//
// Every exported function is the portable reference for its operation; its doc
// comment shows the reference loop. Architecture-specific fast paths (issue 3)
// plug in behind these names and are tested side by side with the generic code.
package kernels
