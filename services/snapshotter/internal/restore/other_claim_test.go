package restore_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stateguard/stateguard/services/snapshotter/api/v1alpha1"
)

// TestRestoreOfAnotherClaimsSnapshot restores claim data, mounted by a
// Deployment, from a snapshot of claim seed (a clone, or a replica's
// snapshot): the claim then holds the seed's files, and restore.completed
// names the seed claim (snapshot_pvc), so the correlator reads the restored
// volume's lineage from the seed's (the model's lineages.inherited).
func TestRestoreOfAnotherClaimsSnapshot(t *testing.T) {
	ec := natsClient(t)
	useCluster(t)
	ns := cluster.Namespace(t, nil)
	deployment(t, ns)
	if err := kc.Create(t.Context(), claim(ns, "seed")); err != nil {
		t.Fatal(err)
	}
	waitBound(t, ns, "seed")
	dir, err := cluster.ClaimDir(t.Context(), ns, "seed")
	if err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dir, map[string]string{"PG_VERSION": "17\n", "base/1/1259": "the seed's relation pages", "pg_wal/00000007": "seed wal"})
	seed := sums(t, ns, "seed")
	snapshot(t, ns, "seed-good", "seed")
	executor(t, ns, ec)

	if err := kc.Create(t.Context(), newRestore(ns, "r-seed", func(r *v1alpha1.Restore) {
		r.Spec.VolumeSnapshot, r.Spec.PVC = "seed-good", "data"
	})); err != nil {
		t.Fatal(err)
	}
	r := ended(t, ns, "r-seed")
	if r.Status.Phase != v1alpha1.RestoreCompleted {
		t.Fatalf("restore ended %s (%s: %s), want Completed", r.Status.Phase, r.Status.FailureReason, r.Status.Message)
	}
	if r.Status.PVC != "data" {
		t.Errorf("restore status claim %q, want data (the spec's, not the snapshot's source)", r.Status.PVC)
	}
	if diff := cmp.Diff(seed, sums(t, ns, "data")); diff != "" {
		t.Errorf("claim data after the restore (-seed's snapshot +data):\n%s", diff)
	}
	if diff := cmp.Diff(seed, sums(t, ns, "seed")); diff != "" {
		t.Errorf("the seed claim changed (-before +after):\n%s", diff)
	}
	waitRunning(t, ns, "data", 2)

	done := onlyCompleted(t, decisionEvents(t, ec, ns))
	cut := snapshotCut(t, ns, "seed-good")
	if done.PVC != "data" || done.VolumeSnapshot != "seed-good" || done.SnapshotPVC != "seed" || !cmp.Equal(done.SnapshotTime, &cut) {
		t.Errorf("restore.completed pvc %q, volume_snapshot %q, snapshot_pvc %q, snapshot_time %v; want data, seed-good, seed, %v",
			done.PVC, done.VolumeSnapshot, done.SnapshotPVC, done.SnapshotTime, cut)
	}
}
