// Package policy reads a SnapshotPolicy's spec into what the controller
// runs (its schedules, retention and hook timeouts), one policy at a time:
// a spec that does not parse is an *InvalidError naming the field and the
// reason for the policy's Ready condition, and stops nothing but that policy.
package policy
