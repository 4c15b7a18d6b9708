package restore_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/harness/csidriver"
	"github.com/stateguard/stateguard/services/snapshotter/api/v1alpha1"
	"github.com/stateguard/stateguard/services/snapshotter/internal/restore"
)

// TestRestoreFollowsTheIncidentsCurrentRecommendation creates a Restore
// naming only an incident. The snapshotter follows the restore.recommended
// events itself (its durable consumer into its KV bucket): revision 1
// names a snapshot not ready yet, so the Restore waits in Pending; revision
// 2 (the known-good) arrives, then revision 1 again, late — the Restore
// restores revision 2's snapshot and says so.
func TestRestoreFollowsTheIncidentsCurrentRecommendation(t *testing.T) {
	ec := natsClient(t)
	useCluster(t)
	ns := cluster.Namespace(t, nil)
	d := deployment(t, ns)

	store, err := restore.OpenRecommendationStore(t.Context(), ec.JetStream(), "", 1)
	if err != nil {
		t.Fatal(err)
	}
	h := &restore.RecommendationHandler{Store: store, Log: discard}
	sub, err := ec.Consume(t.Context(), restore.RecommendationsConsumer(), h.Handle)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Stop(context.Background()) }()
	recommend := func(id string, rev int, snap string) {
		t.Helper()
		ev, err := ec.NewEvent(events.TypeRestoreRecommended, id, events.RestoreRecommended{
			Incident: "inc-7", Namespace: ns, App: "shop", PVC: "data", VolumeSnapshot: snap, Revision: rev,
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := ec.Publish(t.Context(), ev); err != nil {
			t.Fatal(err)
		}
	}

	// "later" cannot be taken while the storage holds the call.
	hold := make(chan struct{})
	heal := cluster.Driver.Inject("CreateSnapshot", csidriver.Fault{Hold: hold, Times: 1})
	defer heal()
	release := sync.OnceFunc(func() { close(hold) })
	defer release()
	later := &snapv1.VolumeSnapshot{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "later"},
		Spec:       snapv1.VolumeSnapshotSpec{Source: snapv1.VolumeSnapshotSource{PersistentVolumeClaimName: ptr.To("data")}},
	}
	if err := kc.Create(t.Context(), later); err != nil {
		t.Fatal(err)
	}
	recommend("rec-"+ns+"-1", 1, "later")
	executor(t, ns, ec, func(e *restore.Executor) { e.Recommendations = store })
	if err := kc.Create(t.Context(), newRestore(ns, "r1", func(r *v1alpha1.Restore) { r.Spec.VolumeSnapshot, r.Spec.Incident = "", "inc-7" })); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the Restore waiting for revision 1's snapshot", 2*time.Minute, func(ctx context.Context) (bool, error) {
		var r v1alpha1.Restore
		err := kc.Get(ctx, client.ObjectKey{Namespace: ns, Name: "r1"}, &r)
		return err == nil && r.Status.Phase == v1alpha1.RestorePending && r.Status.Recommendation != nil &&
			r.Status.Recommendation.Revision == 1 && strings.Contains(r.Status.Message, "later"), nil
	})
	recommend("rec-"+ns+"-2", 2, "known-good")
	recommend("rec-"+ns+"-1-replayed", 1, "later")
	eventually(t, "the Restore following revision 2", 2*time.Minute, func(ctx context.Context) (bool, error) {
		var r v1alpha1.Restore
		err := kc.Get(ctx, client.ObjectKey{Namespace: ns, Name: "r1"}, &r)
		return err == nil && r.Status.Recommendation != nil && r.Status.Recommendation.Revision == 2, nil
	})
	// The storage lets "later" be taken now (the sidecar would otherwise
	// wait for the held call's timeout before the safety snapshot).
	release()
	r := ended(t, ns, "r1")
	checkRestored(t, r, "data", d)
	want := &v1alpha1.RecommendationRef{Revision: 2, EventID: "rec-" + ns + "-2", VolumeSnapshot: "known-good", PVC: "data"}
	if diff := cmp.Diff(want, r.Status.Recommendation); diff != "" {
		t.Errorf("status.recommendation (-want +got):\n%s", diff)
	}
	if r.Status.VolumeSnapshot != "known-good" {
		t.Errorf("status.volumeSnapshot %q, want known-good", r.Status.VolumeSnapshot)
	}
	kev := kubeEvents(t, ns, "r1", "RecommendationRevised")
	if !strings.Contains(kev["RecommendationRevised"], "revision 2: volume snapshot known-good (was revision 1: later)") {
		t.Errorf("RecommendationRevised event %q", kev["RecommendationRevised"])
	}
	done, err := events.Decode[events.RestoreCompleted](decisionEvents(t, ec, ns)[events.TypeRestoreCompleted][0])
	if err != nil {
		t.Fatal(err)
	}
	if done.VolumeSnapshot != "known-good" || done.Incident != "inc-7" {
		t.Errorf("restore.completed names %s of incident %s", done.VolumeSnapshot, done.Incident)
	}
	// The late revision 1 changed nothing in the store either.
	recs, err := store.Recommended(t.Context(), ns, "inc-7")
	if err != nil || len(recs) != 1 || recs[0].Revision != 2 {
		t.Errorf("stored recommendations %+v, %v; want revision 2 only", recs, err)
	}
}
