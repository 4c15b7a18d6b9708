package eventstest

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stateguard/stateguard/pkg/events"
)

func TestRunServesJetStreamWithSyncAlways(t *testing.T) {
	s := Run(t)
	if !s.JetStreamEnabled() {
		t.Fatal("JetStream is not enabled")
	}
	if !s.JetStreamConfig().SyncAlways {
		t.Error("sync_interval is not always")
	}
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	c := Client(t, s)
	if err := c.Ready(ctx); err != nil {
		t.Fatalf("client not ready: %v", err)
	}
}

func TestMain(m *testing.M) {
	ServeIfChild()
	os.Exit(m.Run())
}

func TestRunProcessServesJetStreamFromAChild(t *testing.T) {
	p := RunProcess(t)
	if p.Pid == os.Getpid() {
		t.Fatal("the server runs in the test process")
	}
	info := publishOne(t, ClientURL(t, p.URL))
	if info.Config.Replicas != 1 {
		t.Errorf("stream has %d replicas, want 1", info.Config.Replicas)
	}
}

// A cluster of three servers in a child process: the streams are replicated
// on all three, with sync_interval: always, and an event published is
// stored.
func TestRunProcessServesAJetStreamCluster(t *testing.T) {
	p := RunProcess(t, WithCluster(3))
	if p.Servers != 3 || strings.Count(p.URL, ",") != 2 {
		t.Fatalf("process %+v: want three servers' URLs", p)
	}
	info := publishOne(t, ProcessClient(t, p))
	if info.Config.Replicas != 3 || info.Cluster == nil || info.Cluster.Leader == "" || len(info.Cluster.Replicas) != 2 {
		t.Errorf("stream is not replicated on three servers: replicas %d, cluster %+v", info.Config.Replicas, info.Cluster)
	}
}

// publishOne publishes an event and checks that its stream holds it.
func publishOne(t *testing.T, c *events.Client) *jetstream.StreamInfo {
	t.Helper()
	ev := events.MustNewEvent(events.TypeSnapshotFailed, "/natstest", "one", events.SnapshotFailed{Namespace: "ns", PVC: "data", Error: "test"})
	if err := c.Publish(t.Context(), ev); err != nil {
		t.Fatal(err)
	}
	st, err := c.JetStream().Stream(t.Context(), events.StreamSnapshot)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Errorf("stream holds %d messages, want 1", info.State.Msgs)
	}
	return info
}
