// Command certwatcher finds every TLS certificate in a cluster (and in
// watched directories), publishes expiry warnings, exports metrics, and
// rotates certificates on request.
package main
