// Package tlstest issues the certificates a test needs to run a stateguard
// service over HTTPS: a throwaway CA, a serving certificate for 127.0.0.1
// and localhost laid out the way kubelet mounts a Secret (files reached
// through the ..data symlink, swapped atomically on rotation), client
// certificates, and Check, the TLS conformance every service passes: a
// handshake verified against the CA, TLS 1.1 and plain HTTP refused, and a
// rotated certificate served to the next connection without a restart.
package tlstest
