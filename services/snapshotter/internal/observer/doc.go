// Package observer publishes io.stateguard.workload.observed.v1: for every
// PVC a SnapshotPolicy selects, the set of pods that mount it (owners, app
// labels, image digests, the TLS Secrets they mount), each time that set
// changes and again on every full resync.
//
// Informers on pods, PVCs, SnapshotPolicies and (metadata only)
// kubernetes.io/tls Secrets feed a work queue of PVCs; each PVC is
// observed on its own (Observe), compared with what was last published
// (Next), and the result is kept in a JetStream KV bucket before it is
// published, so a restarted snapshotter compares against what it saw last.
// The rules are pure functions (Selected, Observe, Next); Observer wraps
// them with informers, the queue and the store.
package observer
