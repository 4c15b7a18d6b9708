// Package model is the correlator's pure, deterministic core. A State holds
// the facts learnt from events about one namespace (SARIF uploads, snapshots,
// certificates) as sets keyed by their identity, so that applying an event a
// second time changes nothing and the facts do not depend on the order they
// arrived in. Everything else is derived: Views (version verdicts, snapshot
// classes, known-good snapshots, incidents) are recomputed from the facts,
// and Apply turns the difference between what the view calls for and the
// Ledger of decisions in force into decision events with deterministic ids.
//
// Derive computes a view from scratch; Apply keeps, with the State in
// memory, each application's last view and re-derives only what an event
// changed (derivecache.go). Tests compare the two after every event.
//
// The package does no I/O and reads no clock.
package model
