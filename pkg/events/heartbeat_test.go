package events_test

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/events/eventstest"
)

func TestMain(m *testing.M) {
	eventstest.ServeIfChild()
	os.Exit(m.Run())
}

// TestConsumerPullsAgainAfterMissedHeartbeats freezes the server (SIGSTOP)
// under an idle consumer for longer than two heartbeats of its pull: the
// consumer notices within seconds — it counts and logs the missed
// heartbeats — and, once the server runs again, handles the next event.
// With nats.go's default pull expiry (30 s) it would notice only after
// 30 s, the stall the correlator's benchmark once showed.
func TestConsumerPullsAgainAfterMissedHeartbeats(t *testing.T) {
	p := eventstest.RunProcess(t)
	reg := prometheus.NewRegistry()
	var logs eventstest.LogBuffer
	c := eventstest.ProcessClient(t, p, events.WithRegisterer(reg),
		events.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
	got := make(chan string, 4)
	sub, err := c.Consume(t.Context(), events.ConsumerConfig{Stream: events.StreamSnapshot, Name: "heartbeat"},
		func(_ context.Context, ev events.Event) error {
			got <- ev.ID()
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Stop(context.Background()) }()
	if err := c.Publish(t.Context(), snapshotEvent(t, 1)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, got, "snap-0001")

	server, err := os.FindProcess(p.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if err := server.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	deadline := stopped.Add(15 * time.Second)
	for missed(t, reg) == 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	noticed := time.Since(stopped)
	if err := server.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if missed(t, reg) == 0 {
		t.Fatalf("no missed heartbeat counted %s after the server stopped", noticed.Round(time.Second))
	}
	if !strings.Contains(logs.String(), "no heartbeat from the server for a pull") {
		t.Errorf("the missed heartbeats were not logged:\n%s", logs.String())
	}
	if err := c.Publish(t.Context(), snapshotEvent(t, 2)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, got, "snap-0002")
	t.Logf("missed heartbeats noticed %s after the server stopped", noticed.Round(100*time.Millisecond))
}

func missed(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() == "stateguard_consumer_missed_heartbeats_total" {
			for _, m := range mf.GetMetric() {
				total += m.GetCounter().GetValue()
			}
		}
	}
	return total
}

func waitFor(t *testing.T, got <-chan string, id string) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case g := <-got:
			if g == id {
				return
			}
		case <-timeout:
			t.Fatalf("event %s not handled within 30s", id)
		}
	}
}
