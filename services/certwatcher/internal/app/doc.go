// Package app wires certwatcher together: configuration, the NATS client,
// Kubernetes discovery, the directory watcher, the expiry notifier, the
// rotation executor and the HTTP server, with a graceful shutdown.
package app
