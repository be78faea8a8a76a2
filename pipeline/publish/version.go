package publish

// Version is the tool version recorded in outputs and manifests.
const Version = "0.1.0"

// SpecVersion is the data contract version the outputs follow (SPEC.md).
const SpecVersion = "1.1"
