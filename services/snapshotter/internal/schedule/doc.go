// Package schedule turns a cron expression and a time zone into slots: the
// instants a policy should fire at. It is pure: callers pass now (from an
// injected clock) and the last slot that ran, and get back the slot to run,
// the slots missed while nobody ran, and the next slot. It also names
// snapshots deterministically by (policy, PVC, slot), so that running the
// same slot twice cannot create a second snapshot.
package schedule
