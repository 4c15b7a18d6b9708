package streamtest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stateguard/stateguard/pkg/events"
)

// Stored returns every event of type typ stored in its stream, in order.
// Publish returns only once JetStream stored an event, so what a test
// published before calling Stored is all there.
func Stored(tb testing.TB, c *events.Client, typ string) []events.Event {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	subj := events.SubjectOf(typ)
	st, err := c.JetStream().Stream(ctx, events.StreamOf(typ))
	if err != nil {
		tb.Fatalf("stream: %v", err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(subj))
	if err != nil {
		tb.Fatalf("stream info: %v", err)
	}
	want := int(info.State.Subjects[subj])
	if want == 0 {
		return nil
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subj}})
	if err != nil {
		tb.Fatalf("consumer: %v", err)
	}
	var out []events.Event
	for len(out) < want {
		batch, err := cons.Fetch(want-len(out), jetstream.FetchMaxWait(10*time.Second))
		if err != nil {
			tb.Fatalf("fetch: %v", err)
		}
		for m := range batch.Messages() {
			ev, err := events.DecodeMsg(&nats.Msg{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()})
			if err != nil {
				tb.Fatalf("decode: %v", err)
			}
			out = append(out, ev)
		}
		if err := batch.Error(); err != nil {
			tb.Fatalf("fetch: %v", err)
		}
	}
	return out
}

// Payloads decodes the events' data.
func Payloads[T any](tb testing.TB, evs []events.Event) []T {
	tb.Helper()
	var out []T
	for _, ev := range evs {
		p, err := events.Decode[T](ev)
		if err != nil {
			tb.Fatalf("decode %s: %v", ev.ID(), err)
		}
		out = append(out, p)
	}
	return out
}
