// Package model is the correlator's pure, deterministic core. A State holds
// the facts learnt from events about one namespace (SARIF uploads, snapshots,
// certificates) as sets keyed by their identity, so that applying an event a
// second time changes nothing and the facts do not depend on the order they
// arrived in. Everything else is derived: Views (version verdicts, snapshot
// classes, known-good snapshots, incidents) are recomputed from the facts,
// and Apply turns the difference between what the view calls for and the
// Ledger of decisions in force into decision events with deterministic ids.
//
// Each rule of the correlator's rule table is one function of the facts it
// needs, returning values: verdictOf, spansOf and lineages.epochs,
// snapshotView and classify, chooseKnownGood, runningOf, incidentSpans,
// dressIncident and restorePointBefore, secretsOf, certExpiry (certs.go),
// recommend. deriveApp (appview.go) applies them in order for one
// application.
//
// Derive computes a view from scratch; Apply keeps, with the State in
// memory, each application's last view and re-derives only what an event
// changed (derivecache.go; snapshotViews and the verdicts memo are the only
// rules' wrappers that know of it). Tests compare the two after every event.
// Between events the kept views are compact (appViews.compact): of each
// snapshot view only its class and lists, rebuilt from the snapshot when
// read.
//
// What can no longer matter is forgotten: prune drops superseded uploads and
// snapshots beyond the history; pruneObservations (obsprune.go) drops the
// workload observations beyond the history that repeat an earlier one.
//
// The package does no I/O and reads no clock.
package model
