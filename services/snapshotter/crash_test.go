package main

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/harness/kubetest"
	"github.com/stateguard/stateguard/pkg/harness/natstest"
	"github.com/stateguard/stateguard/pkg/harness/proctest"
	"github.com/stateguard/stateguard/services/snapshotter/api/v1alpha1"
)

// TestKilledMidSlotAndMidRetention kills the snapshotter process -9 at two
// points a test picks exactly, through a proxy in front of the API server:
// right after the API server created a slot's VolumeSnapshot and before the
// service heard so (mid-slot), and while its first retention delete is on
// the way (mid-retention). Restarted each time, it takes every slot's
// snapshot exactly once (one snapshot.completed per VolumeSnapshot, slots
// distinct, a gap only where snapshot.missed names its catch-up), and
// retention finishes — keeping the newest snapshot and a pinned one,
// deleting the rest.
func TestKilledMidSlotAndMidRetention(t *testing.T) {
	c := cluster
	ns := c.Namespace(t, nil)
	srv := natstest.Run(t)
	ec := natstest.Client(t, srv)
	bin := proctest.Build(t, ".")
	px := kubetest.StartHoldProxy(t, c.Env)
	env := map[string]string{
		"KUBECONFIG": px.Kubeconfig(t), "NATS_URL": srv.ClientURL(), "HTTP_ADDR": "127.0.0.1:0",
		"WATCH_NAMESPACE": ns, "POD_NAMESPACE": ns, "POD_NAME": "snapshotter-0", "RESYNC": "1s",
	}
	snapshots := "/apis/snapshot.storage.k8s.io/v1/namespaces/" + ns + "/volumesnapshots"

	kc, pol := claimAndFrequentPolicy(t, c.Config, c.Client, ns, "1Gi")
	// Spec changes are merge patches: the service writes the status meanwhile.
	patchPolicy := func(change func(*v1alpha1.SnapshotPolicy)) {
		t.Helper()
		orig := pol.DeepCopy()
		change(pol)
		if err := kc.Patch(t.Context(), pol, client.MergeFrom(orig)); err != nil {
			t.Fatal(err)
		}
	}
	patchPolicy(func(p *v1alpha1.SnapshotPolicy) {
		p.Spec.Schedule = "@every 3s"
		p.Spec.Retention = v1alpha1.Retention{KeepLast: 20}
	})
	poll := func(what string, p *proctest.Proc, cond func(context.Context) bool) {
		t.Helper()
		if err := wait.PollUntilContextTimeout(t.Context(), 250*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) { return cond(ctx), nil }); err != nil {
			t.Fatalf("waiting for %s: %v\nlogs:\n%s", what, err, p.Logs())
		}
	}
	arrived := func(what string, p *proctest.Proc, h *kubetest.Held) {
		t.Helper()
		select {
		case <-h.Arrived:
		case <-time.After(3 * time.Minute):
			t.Fatalf("%s never came\nlogs:\n%s", what, p.Logs())
		}
	}

	// Mid-slot: the first VolumeSnapshot is created, the service is killed
	// before the answer reaches it.
	create := px.Hold(func(r *http.Request) bool { return r.Method == http.MethodPost && r.URL.Path == snapshots }, true)
	p := proctest.Start(t, bin, env)
	arrived("the first slot's VolumeSnapshot create", p, create)
	p.Kill()
	create.Release()
	var first snapv1.VolumeSnapshotList
	if err := kc.List(t.Context(), &first, client.InNamespace(ns)); err != nil || len(first.Items) != 1 {
		t.Fatalf("after the kill mid-slot: %d snapshots (%v), want the one the API server created", len(first.Items), err)
	}
	killedSlot := first.Items[0].Name
	t.Logf("killed -9 with %s created and unacknowledged", killedSlot)

	p = proctest.Start(t, bin, env)
	poll("four completed snapshots after the restart", p, func(ctx context.Context) bool {
		return len(snapshotEvents(ctx, t, ec, events.TypeSnapshotCompleted)) >= 4
	})
	// No more slots: a schedule that comes once a year.
	patchPolicy(func(p *v1alpha1.SnapshotPolicy) { p.Spec.Schedule = "0 0 1 1 *" })
	var live []snapv1.VolumeSnapshot
	poll("every snapshot ready and reported", p, func(ctx context.Context) bool {
		var l snapv1.VolumeSnapshotList
		if err := kc.List(ctx, &l, client.InNamespace(ns)); err != nil {
			return false
		}
		for _, vs := range l.Items {
			if vs.Annotations[v1alpha1.AnnotationReported] != "completed" {
				return false
			}
		}
		live = l.Items
		return true
	})
	completed := snapshotEvents(t.Context(), t, ec, events.TypeSnapshotCompleted)
	if len(completed) != len(live) {
		t.Errorf("%d snapshot.completed events for %d snapshots", len(completed), len(live))
	}
	names := map[string]int{}
	var slots []time.Time
	for _, ev := range completed {
		sc, err := events.Decode[events.SnapshotCompleted](ev)
		if err != nil {
			t.Fatal(err)
		}
		names[sc.VolumeSnapshot]++
		if sc.Slot == nil {
			t.Fatalf("snapshot.completed without a slot: %+v", sc)
		}
		slots = append(slots, *sc.Slot)
	}
	for n, k := range names {
		if k != 1 {
			t.Errorf("%s completed %d times, want once", n, k)
		}
	}
	if names[killedSlot] != 1 {
		t.Errorf("the slot killed mid-way (%s) completed %d times, want once", killedSlot, names[killedSlot])
	}
	slices.SortFunc(slots, func(a, b time.Time) int { return a.Compare(b) })
	catchUps := map[time.Time]bool{}
	for _, ev := range snapshotEvents(t.Context(), t, ec, events.TypeSnapshotMissed) {
		m, err := events.Decode[events.SnapshotMissed](ev)
		if err != nil {
			t.Fatal(err)
		}
		catchUps[m.CatchUp.UTC()] = true
	}
	for i := 1; i < len(slots); i++ {
		switch gap := slots[i].Sub(slots[i-1]); {
		case gap <= 0:
			t.Errorf("slot %s taken twice", slots[i])
		case gap > 3*time.Second && !catchUps[slots[i].UTC()]:
			t.Errorf("slots %s → %s: a gap of %s with no snapshot.missed naming %s as its catch-up", slots[i-1], slots[i], gap, slots[i])
		}
	}
	t.Logf("mid-slot: %d slots, %d snapshots, %d completed events, %d catch-ups", len(slots), len(live), len(completed), len(catchUps))

	// Mid-retention: pin the oldest, keep only the newest; the service is
	// killed while its first delete is held before the API server.
	slices.SortFunc(live, func(a, b snapv1.VolumeSnapshot) int {
		return strings.Compare(a.Annotations[v1alpha1.AnnotationSlot], b.Annotations[v1alpha1.AnnotationSlot])
	})
	pinned, newest := live[0], live[len(live)-1]
	origPinned := pinned.DeepCopy()
	if pinned.Labels == nil {
		pinned.Labels = map[string]string{}
	}
	pinned.Labels[v1alpha1.LabelPinned] = "true"
	if err := kc.Patch(t.Context(), &pinned, client.MergeFrom(origPinned)); err != nil {
		t.Fatal(err)
	}
	del := px.Hold(func(r *http.Request) bool {
		return r.Method == http.MethodDelete && strings.HasPrefix(r.URL.Path, snapshots+"/")
	}, false)
	patchPolicy(func(p *v1alpha1.SnapshotPolicy) { p.Spec.Retention = v1alpha1.Retention{KeepLast: 1} })
	arrived("the first retention delete", p, del)
	p.Kill()
	del.Release()
	p = proctest.Start(t, bin, env)
	var left []string
	poll("retention to finish", p, func(ctx context.Context) bool {
		var l snapv1.VolumeSnapshotList
		if err := kc.List(ctx, &l, client.InNamespace(ns)); err != nil {
			return false
		}
		left = left[:0]
		for _, vs := range l.Items {
			if vs.DeletionTimestamp == nil {
				left = append(left, vs.Name)
			}
		}
		slices.Sort(left)
		return len(left) <= 2
	})
	want := []string{pinned.Name, newest.Name}
	slices.Sort(want)
	if !slices.Equal(left, want) {
		t.Errorf("after retention: %v, want the pinned and the newest %v", left, want)
	}
	t.Logf("mid-retention: %d snapshots before, %v after", len(live), left)
}
