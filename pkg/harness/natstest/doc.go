// Package natstest runs real NATS JetStream servers for tests, benchmarks
// and the local stack: one embedded in the process (Run, Start), or, so a
// benchmark can tell its own memory from the server's, in a child process
// (RunProcess) — a single server or a JetStream cluster on loopback
// (WithCluster), as deployed. Servers listen on random loopback ports, keep
// their stores in temporary directories and fsync every write
// (sync_interval: always) unless told otherwise.
package natstest
