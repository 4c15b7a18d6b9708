// Package eventstest runs real NATS JetStream servers for tests, benchmarks
// and the local stack: one embedded in the process (Run, Start), or, so a
// benchmark can tell its own memory from the server's, in a child process
// (RunProcess) — a single server or a JetStream cluster on loopback
// (WithCluster), as deployed — and connects events clients to them (Client,
// ProcessClient). Servers listen on random loopback ports, keep their stores
// in temporary directories and fsync every write (sync_interval: always)
// unless told otherwise.
//
// It is test support that lives in pkg/events so that the contract's own
// tests talk to a real JetStream without importing pkg/harness (which
// imports pkg/events): pkg/harness/natstest is built on it. Only tests, and
// the harness, import it.
package eventstest
