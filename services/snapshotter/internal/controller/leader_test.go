package controller_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/snapshotter/internal/leader"
)

// TestLeaderElection runs two replicas against one API server: only the one
// holding the Lease makes passes and creates the snapshot.
func TestLeaderElection(t *testing.T) {
	ns := namespace(t)
	create(t, pvc(ns, "data", map[string]string{"app": "db"}))
	p := policy(t, ns, "hourly")
	r := newRig(t, ns, nextHour(p.CreationTimestamp.Time, 1))

	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	var passes [2]atomic.Int64
	for i := range 2 {
		c := r.controller(r.events)
		c.Resync = time.Hour // passes come from leadership and watch events only
		c.Passes = func() { passes[i].Add(1) }
		wg.Go(func() {
			err := leader.Run(ctx, env.Client, leader.Config{
				Namespace: ns, Name: "snapshotter", Identity: fmt.Sprintf("replica-%d", i),
				LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 100 * time.Millisecond,
			}, logger, func(ctx context.Context) { _ = c.Run(ctx) })
			if err != nil {
				t.Error(err)
			}
		})
	}
	defer func() {
		cancel()
		wg.Wait()
	}()
	pollUntil(t, "snapshot.completed and the pass that published it", func() bool {
		return len(r.published(events.TypeSnapshotCompleted)) > 0 && passes[0].Load()+passes[1].Load() >= 2
	})
	lease, err := env.Client.CoordinationV1().Leases(ns).Get(t.Context(), "snapshotter", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	holder := *lease.Spec.HolderIdentity
	// The follower retried every 100ms while the leader created, waited for
	// and reported the snapshot: it must never have made a pass.
	p0, p1 := passes[0].Load(), passes[1].Load()
	if (p0 == 0) == (p1 == 0) {
		t.Fatalf("passes per replica %d and %d: want exactly one replica active", p0, p1)
	}
	active := "replica-0"
	if p1 > 0 {
		active = "replica-1"
	}
	if holder != active {
		t.Errorf("lease held by %s, but %s made the passes", holder, active)
	}
	if got := r.snapshots(); len(got) != 1 {
		t.Errorf("snapshots %v, want 1", names(got))
	}
	if got := r.published(events.TypeSnapshotCompleted); len(got) != 1 {
		t.Errorf("%d snapshot.completed events, want 1", len(got))
	}
}
