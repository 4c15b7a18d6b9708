package events_test

import (
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/events/eventstest"
)

// TestPublishSurvivesAServerRestart publishes while the server is down: the
// client buffers and retries, and Publish returns only once the restarted
// server stored the event — once.
func TestPublishSurvivesAServerRestart(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir := t.TempDir()
	srv := eventstest.Run(t, eventstest.WithStoreDir(dir), eventstest.WithPort(port))
	var logs eventstest.LogBuffer
	c := eventstest.Client(t, srv, events.WithPublishRetry(40, 100*time.Millisecond), events.WithAckTimeout(time.Second),
		events.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
	ctx := t.Context()
	if err := c.Publish(ctx, snapshotEvent(t, 1)); err != nil {
		t.Fatal(err)
	}
	srv.Shutdown()
	srv.WaitForShutdown()

	done := make(chan error, 1)
	go func() { done <- c.Publish(ctx, snapshotEvent(t, 2)) }()
	select {
	case err := <-done:
		t.Fatalf("Publish returned %v while the server was down", err)
	case <-time.After(700 * time.Millisecond):
	}
	eventstest.Run(t, eventstest.WithStoreDir(dir), eventstest.WithPort(port))
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("publish across the restart: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("publish did not complete after the restart")
	}
	st, err := c.JetStream().Stream(ctx, events.StreamSnapshot)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 2 {
		t.Errorf("stream holds %d events, want 2 (one before, one across the restart)", info.State.Msgs)
	}
	// The client said what happened to its connection.
	for _, want := range []string{`"msg":"nats disconnected"`, `"msg":"nats reconnected"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the client's log lacks %s:\n%s", want, logs.String())
		}
	}
}
