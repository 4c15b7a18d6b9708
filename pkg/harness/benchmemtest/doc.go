// Package benchmemtest measures the peak heap of a piece of work, for
// benchmarks that report memory next to a baseline run in the same process.
package benchmemtest
