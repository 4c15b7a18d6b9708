// Package leader runs a function only while this replica holds a
// coordination.k8s.io Lease, so that several snapshotter replicas never take
// the same snapshot twice. It campaigns again after losing the lease.
package leader
