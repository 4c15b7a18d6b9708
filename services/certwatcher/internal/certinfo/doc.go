// Package certinfo turns PEM or DER bytes into the facts stateguard reports
// about X.509 certificates: whole chains, key type and size, signature
// algorithm, fingerprints, and weaknesses such as small RSA keys, SHA-1
// signatures or expiry. Unreadable input yields an error that says what was
// wrong without ever quoting the input, which may hold private keys.
package certinfo
