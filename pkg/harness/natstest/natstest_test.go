package natstest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
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
