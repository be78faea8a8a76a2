package pipeline

// Version is the tool version recorded in outputs and manifests.
const Version = "0.1.0"
