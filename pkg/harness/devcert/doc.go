// Package devcert issues the certificates of a local stack: a CA made on
// the spot and serving certificates it signs, written as PEM files the
// services' --tls-* flags read. It is for `make run` and tests, never for
// production (cert-manager issues those).
package devcert
