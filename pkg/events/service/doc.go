// Package service holds what every stateguard service's main needs and
// should not write again: JSON logging, the operations HTTP endpoints
// (/healthz, /readyz, /metrics), OpenTelemetry setup from the standard
// OTEL_* variables, the common flags, and signal handling with a graceful,
// bounded shutdown.
package service
