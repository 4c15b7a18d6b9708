// Package notify publishes io.stateguard.certificate.expiring.v1 when a
// known certificate crosses an expiry threshold, or is weak, once per
// threshold per certificate, remembering what it sent in a KV bucket so that
// restarts do not repeat it.
package notify
