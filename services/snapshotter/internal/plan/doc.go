// Package plan builds restore plans for VolumeSnapshots from the cluster's
// state, with pkg/restoreplan, and serves them on
// GET /v1/restore-plan/{namespace}/{volumesnapshot} and the restore-plan
// subcommand.
package plan
