// Package metrics defines the snapshotter's Prometheus metrics.
package metrics
