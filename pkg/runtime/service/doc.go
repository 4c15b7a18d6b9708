// Package service holds what every stateguard service's main needs and
// should not write again: JSON logging, the operations HTTP endpoints
// (/healthz, /readyz, /metrics) in HTTP or HTTPS with certificates re-read
// when they change, OpenTelemetry setup from the standard
// OTEL_* variables, the common flags, the command line (Commands: the
// service, its `bootstrap` and any other subcommand, listed by --help), and
// signal handling with a graceful, bounded shutdown.
package service
