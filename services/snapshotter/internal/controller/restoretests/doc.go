// Package restoretests is the snapshotter's restore-test job: on a
// policy's restore-test schedule it restores the newest ready snapshot into
// a scratch claim in the verification namespace and runs the policy's
// verification Job on it; when the Job finishes it publishes
// snapshot.verified once and removes the test's objects. Tester.Run is one
// pass over one policy.
package restoretests
