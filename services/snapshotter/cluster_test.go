package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/grpc/codes"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/harness/csidriver"
	"github.com/stateguard/stateguard/pkg/harness/logtest"
	"github.com/stateguard/stateguard/pkg/harness/natstest"
)

// TestDriverFailurePublishesSnapshotFailed runs the service on a cluster
// with the real snapshot-controller and csi-snapshotter, whose CSI driver
// fails CreateSnapshot: the service publishes snapshot.failed carrying the
// driver's message.
func TestDriverFailurePublishesSnapshotFailed(t *testing.T) {
	c := cluster
	ns := c.Namespace(t, nil)
	const driverMsg = "storage array offline: controller B degraded"
	t.Cleanup(c.Driver.Inject("CreateSnapshot", csidriver.Fault{Code: codes.Internal, Message: driverMsg, Match: csidriver.InNamespace(ns)}))
	srv := natstest.Run(t)

	claimAndFrequentPolicy(t, c.Config, c.Client, ns, "1Gi")

	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := c.WriteKubeconfig(kubeconfig); err != nil {
		t.Fatal(err)
	}
	out := &logtest.Buffer{}
	getenv := func(k string) string {
		return map[string]string{
			"KUBECONFIG": kubeconfig, "NATS_URL": srv.ClientURL(), "HTTP_ADDR": freeAddr(t),
			"POD_NAMESPACE": ns, "POD_NAME": "snapshotter-0", "RESYNC": "1s",
		}[k]
	}
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, nil, getenv, out) }()
	defer func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("run: %v", err)
		}
	}()

	ec := natstest.Client(t, srv)
	var failed events.SnapshotFailed
	start := time.Now()
	err := wait.PollUntilContextTimeout(t.Context(), 200*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		evs := snapshotEvents(ctx, t, ec, events.TypeSnapshotFailed)
		if len(evs) == 0 {
			return false, nil
		}
		var derr error
		failed, derr = events.Decode[events.SnapshotFailed](evs[0])
		return true, derr
	})
	if err != nil {
		t.Fatalf("waiting for snapshot.failed: %v\nlogs:\n%s", err, out.String())
	}
	if !strings.Contains(failed.Error, driverMsg) || failed.PVC != "data" || failed.Policy != "frequent" || failed.Namespace != ns || failed.VolumeSnapshot == "" {
		t.Errorf("snapshot.failed %+v, want the driver's message %q for %s/data of policy frequent", failed, driverMsg, ns)
	}
	if n := c.Driver.Calls("CreateSnapshot"); n == 0 {
		t.Error("the driver was never asked to snapshot")
	}
	if got := snapshotEvents(t.Context(), t, ec, events.TypeSnapshotCompleted); len(got) != 0 {
		t.Errorf("%d snapshot.completed events although every CreateSnapshot failed", len(got))
	}
	t.Logf("snapshot.failed published %s after the service started: %q", time.Since(start).Round(time.Millisecond), failed.Error)
}

// snapshotEvents returns every event of type typ in the SNAPSHOT stream.
func snapshotEvents(ctx context.Context, t *testing.T, ec *events.Client, typ string) []events.Event {
	t.Helper()
	st, err := ec.JetStream().Stream(ctx, events.StreamSnapshot)
	if err != nil {
		return nil // the service has not created the stream yet
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil
	}
	var out []events.Event
	for seq := info.State.FirstSeq; seq > 0 && seq <= info.State.LastSeq; seq++ {
		raw, err := st.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		ev, err := events.DecodeMsg(&nats.Msg{Subject: raw.Subject, Header: raw.Header, Data: raw.Data})
		if err != nil {
			t.Fatal(err)
		}
		if ev.Type() == typ {
			out = append(out, ev)
		}
	}
	return out
}
