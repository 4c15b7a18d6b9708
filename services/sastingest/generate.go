package main

// The project's SARIF test data is what a real scanner writes: gosec over
// testdata/sampleapp.
//go:generate bash testdata/gen-gosec.sh
