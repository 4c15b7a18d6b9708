// Package logtest gives tests a place to send a service's or a client's
// logs and read them back while other goroutines still write.
package logtest
