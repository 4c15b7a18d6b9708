// Command snapshotter takes CSI VolumeSnapshots of the PVCs that
// SnapshotPolicies select, with consistency hooks, GFS retention, pins and
// restore tests, and publishes what it did as CloudEvents on NATS JetStream.
package main
