// Package hooks runs consistency hooks: commands executed in a container of
// the pods that mount a PVC, before and after it is snapshotted, through the
// API server's pod exec (the same path as kubectl exec).
package hooks
