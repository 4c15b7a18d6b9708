// Package api serves the correlator's read-only HTTP API: the posture of
// every application (versions with verdicts, snapshots with class,
// known-good snapshots, incidents, certificates), the incidents, why a
// snapshot is pinned, clean or tainted, and the restore plan of an app. Every
// route needs a bearer token from the tokens file, compared in constant time.
package api
