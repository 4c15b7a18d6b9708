// Package reporting is the snapshotter's reporting job: every managed
// VolumeSnapshot that settled (ready or failed) is announced exactly once
// as snapshot.completed or snapshot.failed, then marked reported on the
// object. Reporter.Report is one pass; the controller runs it after the
// policies' slots.
package reporting
