// Package engine runs the correlator: durable consumers on the SARIF,
// SNAPSHOT and CERTIFICATE streams feed each event to the pure model, the
// decisions are published, and the namespace's state is written back to a
// JetStream KV bucket with a compare-and-set on its revision.
//
// Serialisation is per namespace. Inside a process a striped lock keeps two
// handlers off the same namespace; across replicas (which share the durable
// consumers) the compare-and-set does: a handler that lost the race reloads
// the state and applies the event again. Decisions are published before the
// state is stored, with deterministic ids, so a crash in between repeats the
// same decisions, which JetStream de-duplicates; once the state is stored,
// its ledger and journal keep a restarted correlator from deciding them
// again.
package engine
