// Package apiauth guards the snapshotter's HTTP API with bearer tokens, the
// same kind the correlator's and sastingest's APIs take: a file of tokens,
// one a line (# comments and blank lines skipped), compared in constant time
// as SHA-256 digests.
package apiauth
