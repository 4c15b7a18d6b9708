// Package encryption decides whether a snapshot is encrypted at rest from
// what Kubernetes says about it: the claim's StorageClass (its CSI driver
// and parameters), the VolumeSnapshotClass, a table of the encryption
// parameters the common CSI drivers document (Documented), and the
// operator's allowlist. Decide is the rule, a pure function; the
// snapshotter's README cites each row's documentation.
package encryption
