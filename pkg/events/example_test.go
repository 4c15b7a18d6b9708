package events_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/events/eventstest"
)

// A team that wants to act on restore recommendations subscribes with a
// durable consumer of its own on the DECISION stream. The handler is
// idempotent: the event id says whether it was seen before.
func ExampleClient_Consume() {
	dir := tempDir()
	defer os.RemoveAll(dir)
	srv, err := eventstest.Start(eventstest.Config{StoreDir: dir, Port: -1, SyncAlways: true})
	if err != nil {
		panic(err)
	}
	defer srv.Shutdown()
	ctx := context.Background()

	client, err := events.Connect(ctx, events.ConnConfig{URL: srv.ClientURL()}, events.WithSource("/acme/pager"))
	if err != nil {
		panic(err)
	}
	defer client.Close(ctx)
	if err := client.EnsureStreams(ctx, events.StreamOptions{}); err != nil {
		panic(err)
	}

	done := make(chan struct{})
	_, err = client.Consume(ctx, events.ConsumerConfig{
		Stream:   events.StreamDecision,
		Name:     "acme-pager",
		Subjects: []string{events.SubjectOf(events.TypeRestoreRecommended)},
	}, func(ctx context.Context, ev events.Event) error {
		rec, err := events.Decode[events.RestoreRecommended](ev) // a bad payload is dead-lettered
		if err != nil {
			return err
		}
		fmt.Printf("page on-call: restore %s/%s from %s (%d reasons)\n", rec.Namespace, rec.PVC, rec.VolumeSnapshot, len(rec.Reasons))
		close(done)
		return nil // ack
	})
	if err != nil {
		panic(err)
	}

	// What the correlator publishes, for the example's sake.
	ev := events.MustNewEvent(events.TypeRestoreRecommended, "/stateguard/correlator", "restore-1", events.RestoreRecommended{
		Incident: "inc-1", Namespace: "shop", App: "db", PVC: "db-data", VolumeSnapshot: "db-data-20261125-1200",
		Reasons: []events.Reason{{EventID: "upload-9", Text: "G101 hard-coded credentials in 1.1.0"}},
	})
	if err := client.Publish(ctx, ev); err != nil {
		panic(err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		fmt.Println("not delivered")
	}
	// Output: page on-call: restore shop/db-data from db-data-20261125-1200 (1 reasons)
}

func tempDir() string {
	d, err := os.MkdirTemp("", "events-example")
	if err != nil {
		panic(err)
	}
	return d
}
