// Package inventory is certwatcher's in-memory list of the certificates it
// knows: every Secret key and file read, with the parsed chain or the reason
// it could not be read. Discovery writes it; the expiry notifier and the
// metrics collector read it.
package inventory
