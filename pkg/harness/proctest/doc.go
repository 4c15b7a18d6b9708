// Package proctest runs a service's binary as a real process in a test, so
// the test can kill it -9 mid-way and start it again (the crash tests).
package proctest
