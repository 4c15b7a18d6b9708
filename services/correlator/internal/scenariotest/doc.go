// Package scenariotest builds the events of correlator scenarios: snapshots,
// SARIF uploads and certificate events with deterministic ids, and the case
// study of the mission (a scan finds a critical flaw in the running version:
// restore the database to a secure backup and rotate its TLS certificates).
// Tests and benchmarks share it; only they import it.
package scenariotest
