package pins_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/harness/kubetest"
	"github.com/stateguard/stateguard/pkg/harness/natstest"
	"github.com/stateguard/stateguard/services/snapshotter/api/v1alpha1"
	"github.com/stateguard/stateguard/services/snapshotter/internal/controller"
	"github.com/stateguard/stateguard/services/snapshotter/internal/pins"
)

var (
	kc    client.Client
	seq   atomic.Int64
	epoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
)

func TestMain(m *testing.M) {
	env, err := kubetest.StartEnv(kubetest.Options{WithoutCertManager: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	scheme, err := controller.Scheme()
	if err == nil {
		kc, err = client.New(env.Config, client.Options{Scheme: scheme})
	}
	code := 1
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
	} else {
		code = m.Run()
	}
	_ = env.Stop()
	os.Exit(code)
}

// snapshot creates a namespace with one VolumeSnapshot and returns its key.
func snapshot(t *testing.T) client.ObjectKey {
	t.Helper()
	ns := fmt.Sprintf("p%d", seq.Add(1))
	if err := kc.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	claim := "data"
	vs := &snapv1.VolumeSnapshot{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "snap"},
		Spec:       snapv1.VolumeSnapshotSpec{Source: snapv1.VolumeSnapshotSource{PersistentVolumeClaimName: &claim}},
	}
	if err := kc.Create(t.Context(), vs); err != nil {
		t.Fatal(err)
	}
	return client.ObjectKeyFromObject(vs)
}

// request is a pin (true) or unpin (false) at minute m after epoch.
type request struct {
	pin    bool
	minute int
	reason string
}

func (r request) event(key client.ObjectKey) events.Event {
	typ, id := events.TypeSnapshotUnpinRequested, fmt.Sprintf("unpin-%d", r.minute)
	var payload any = events.SnapshotUnpinRequested{Namespace: key.Namespace, VolumeSnapshot: key.Name, Reason: r.reason}
	if r.pin {
		typ, id = events.TypeSnapshotPinRequested, fmt.Sprintf("pin-%d", r.minute)
		payload = events.SnapshotPinRequested{Namespace: key.Namespace, VolumeSnapshot: key.Name, Reason: r.reason}
	}
	ev := events.MustNewEvent(typ, "/stateguard/correlator", id, payload)
	ev.SetTime(epoch.Add(time.Duration(r.minute) * time.Minute))
	return ev
}

type state struct {
	Pinned, Reason, UpdatedAt string
}

func stateOf(t *testing.T, key client.ObjectKey) state {
	t.Helper()
	var vs snapv1.VolumeSnapshot
	if err := kc.Get(t.Context(), key, &vs); err != nil {
		t.Fatal(err)
	}
	return state{vs.Labels[v1alpha1.LabelPinned], vs.Annotations[v1alpha1.AnnotationPinnedReason], vs.Annotations[v1alpha1.AnnotationPinUpdatedAt]}
}

func at(minute int) string {
	return epoch.Add(time.Duration(minute) * time.Minute).Format(time.RFC3339Nano)
}

func TestHandleConverges(t *testing.T) {
	tests := []struct {
		name     string
		requests []request
		want     state
	}{
		{"a pin sets label and reason", []request{{true, 1, "known good"}}, state{"true", "known good", at(1)}},
		{"a duplicate pin changes nothing", []request{{true, 1, "known good"}, {true, 1, "known good"}}, state{"true", "known good", at(1)}},
		{"pin then unpin unpins", []request{{true, 1, "known good"}, {false, 2, "incident closed"}}, state{"", "", at(2)}},
		{"an unpin arriving before its older pin stays unpinned", []request{{false, 2, "incident closed"}, {true, 1, "known good"}}, state{"", "", at(2)}},
		{"an older pin after a newer unpin is ignored", []request{{true, 1, "a"}, {false, 3, "b"}, {true, 2, "a"}}, state{"", "", at(3)}},
		{"a newer pin with another cause replaces the reason", []request{{true, 1, "known-good: newest clean"}, {true, 2, "restore point of incident i1"}}, state{"true", "restore point of incident i1", at(2)}},
		{"an older pin with the previous cause does not bring it back", []request{{true, 1, "known good"}, {true, 3, "restore point of incident i1"}, {true, 2, "known good"}}, state{"true", "restore point of incident i1", at(3)}},
		{"a newer pin after an unpin pins again", []request{{true, 1, "a"}, {false, 2, "b"}, {true, 3, "c"}, {true, 3, "c"}}, state{"true", "c", at(3)}},
	}
	h := &pins.Handler{Client: kc, Log: slog.New(slog.DiscardHandler)}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := snapshot(t)
			for _, r := range tt.requests {
				if err := h.Handle(t.Context(), r.event(key)); err != nil {
					t.Fatalf("handle %+v: %v", r, err)
				}
			}
			if diff := cmp.Diff(tt.want, stateOf(t, key)); diff != "" {
				t.Errorf("state (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUnknownSnapshotIsPermanent(t *testing.T) {
	h := &pins.Handler{Client: kc, Log: slog.New(slog.DiscardHandler)}
	err := h.Handle(t.Context(), request{true, 1, "x"}.event(client.ObjectKey{Namespace: "default", Name: "nope"}))
	if !events.IsPermanent(err) {
		t.Fatalf("error %v, want a permanent error", err)
	}
}

// TestConsumerOutOfOrder sends the requests through real JetStream, newest
// first and each twice, to the durable consumer.
func TestConsumerOutOfOrder(t *testing.T) {
	key := snapshot(t)
	srv := natstest.Run(t)
	c := natstest.Client(t, srv)
	h := &pins.Handler{Client: kc, Log: slog.New(slog.DiscardHandler)}
	var handled atomic.Int64
	sub, err := c.Consume(t.Context(), pins.Consumer(), func(ctx context.Context, ev events.Event) error {
		err := h.Handle(ctx, ev)
		if err == nil {
			handled.Add(1)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Stop(context.Background()) })
	reqs := []request{{true, 5, "verified restore"}, {false, 4, "superseded"}, {true, 1, "first"}}
	for _, r := range reqs {
		// The second publish of each is a new message (another id): a
		// correlator that sent the same request twice.
		ev := r.event(key)
		dup := ev.Clone()
		dup.SetID(ev.ID() + "-again")
		if err := c.Publish(t.Context(), ev, dup); err != nil {
			t.Fatal(err)
		}
	}
	err = wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		return handled.Load() >= int64(2*len(reqs)), nil
	})
	if err != nil {
		t.Fatalf("handled %d of %d requests: %v", handled.Load(), 2*len(reqs), err)
	}
	if diff := cmp.Diff(state{"true", "verified restore", at(5)}, stateOf(t, key)); diff != "" {
		t.Errorf("state (-want +got):\n%s", diff)
	}
}
