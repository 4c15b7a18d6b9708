package events_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/events/eventstest"
)

// TestBindCreatesNothing: a binding client (WithBind) creates no stream,
// consumer or bucket — each create-or-update fails with ErrNotBootstrapped
// until a managing client (the bootstrap) has created it — and then binds
// to exactly what exists.
func TestBindCreatesNothing(t *testing.T) {
	srv := eventstest.Run(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	bind, err := events.Connect(ctx, events.ConnConfig{URL: srv.ClientURL()}, events.WithBind())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bind.Close(context.Background()) })
	if !bind.Binding() {
		t.Fatal("Binding() false with WithBind")
	}
	js := bind.JetStream()
	consumer := events.ConsumerConfig{Stream: events.StreamDecision, Name: "bind-test", Subjects: []string{events.SubjectOf(events.TypeIncidentOpened)}}
	handler := func(context.Context, events.Event) error { return nil }
	attempts := map[string]func() error{
		"streams": func() error { return bind.EnsureStreams(ctx, events.StreamOptions{}) },
		"kv": func() error {
			_, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "bindtest"})
			return err
		},
		"object store": func() error {
			_, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: "bindtest"})
			return err
		},
		"consumer": func() error {
			_, err := bind.Consume(ctx, consumer, handler)
			return err
		},
		"ensure consumer": func() error { return bind.EnsureConsumer(ctx, consumer) },
	}
	for _, name := range []string{"streams", "kv", "object store", "consumer", "ensure consumer"} {
		if err := attempts[name](); !errors.Is(err, events.ErrNotBootstrapped) {
			t.Errorf("%s before the bootstrap: %v, want ErrNotBootstrapped", name, err)
		}
	}
	lister := js.StreamNames(ctx)
	var got []string
	for n := range lister.Name() {
		got = append(got, n)
	}
	if lister.Err() != nil || len(got) != 0 {
		t.Fatalf("a binding client created streams %v (%v)", got, lister.Err())
	}

	// The bootstrap, as a managing client.
	admin := eventstest.Client(t, srv)
	ajs := admin.JetStream()
	if _, err := ajs.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "bindtest"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ajs.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: "bindtest"}); err != nil {
		t.Fatal(err)
	}
	if err := admin.EnsureConsumer(ctx, consumer); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"streams", "kv", "object store", "ensure consumer"} {
		if err := attempts[name](); err != nil {
			t.Errorf("%s after the bootstrap: %v", name, err)
		}
	}
	sub, err := bind.Consume(ctx, consumer, handler)
	if err != nil {
		t.Fatalf("consume after the bootstrap: %v", err)
	}
	if err := sub.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	// A consumer with other filters than the service needs is refused.
	other := consumer
	other.Subjects = []string{events.SubjectOf(events.TypeIncidentClosed)}
	if _, err := bind.Consume(ctx, other, handler); !errors.Is(err, events.ErrNotBootstrapped) {
		t.Errorf("consume with other filters: %v, want ErrNotBootstrapped", err)
	}
	// Binding changed nothing: the consumer keeps its filter.
	cons, err := ajs.Consumer(ctx, consumer.Stream, consumer.Name)
	if err != nil {
		t.Fatal(err)
	}
	if f := cons.CachedInfo().Config.FilterSubject; f != consumer.Subjects[0] {
		t.Errorf("filter %q after binding, want %q", f, consumer.Subjects[0])
	}
}

func TestStreamsOf(t *testing.T) {
	for svc, want := range map[string][]string{
		"sastingest":  {events.StreamSARIF},
		"certwatcher": {events.StreamCertificate, events.StreamDeadLetter},
		"snapshotter": {events.StreamDeadLetter, events.StreamDecision, events.StreamSnapshot},
		"correlator":  {events.StreamCertificate, events.StreamDeadLetter, events.StreamDecision, events.StreamSARIF, events.StreamSnapshot},
		"nobody":      nil,
	} {
		if got := events.StreamsOf(svc); !slices.Equal(got, want) {
			t.Errorf("StreamsOf(%s) = %v, want %v", svc, got, want)
		}
	}
}
