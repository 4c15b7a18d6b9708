// Package marks remembers facts certwatcher already acted on — expiry
// thresholds reported, rotation requests handled — in a JetStream KV bucket,
// so a restarted certwatcher neither reports nor rotates twice.
//
// Marks expire: the bucket has a TTL, so the marks of certificates that are
// gone (renewed, deleted) and of milder thresholds that a more severe one
// has superseded do not pile up. A mark that is still consulted — the
// latest threshold of a certificate that is still there, such as "expired"
// for a certificate nobody removes — is written again once it is older than
// half the TTL, so it does not expire while it matters.
package marks
