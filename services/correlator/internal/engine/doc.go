// Package engine runs the correlator: durable consumers on the SARIF,
// SNAPSHOT and CERTIFICATE streams feed each event to the pure model, the
// decisions are published, and the namespace's state is written back to a
// JetStream KV bucket with a compare-and-set on its revision.
//
// Serialisation is per namespace. A handler runs in store.Update, which
// holds the namespace's lock while the handler applies its event and
// publishes its decisions, and returns once the state is in KV. State writes
// are group commits: Update marks its namespace dirty and waits; one writer
// stores every dirty namespace at once (events.KVWriter: atomic batches, or
// pipelined) and releases the waiting handlers, which then acknowledge their
// events. The state's encoding is package statecodec's.
// A namespace touched by several events between two commits is written once.
//
// Across replicas (which share the durable consumers) the compare-and-set
// serialises: a write that lost the race drops the namespace from memory,
// its events are delivered again and apply to the state the other replica
// stored. Decisions are published before the state is stored, with
// deterministic ids, so a crash in between repeats the same decisions, which
// JetStream de-duplicates; once the state is stored, its ledger and journal
// keep a restarted correlator from deciding them again.
package engine
