package events_test

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/events/eventstest"
)

var benchEvents = flag.Int("bench-events", 20000, "events per round in BenchmarkPublish")

// BenchmarkPublish publishes 1 KiB events through the contract
// (Client.Publish: CloudEvents validation, binary-mode headers, producer
// span, Nats-Msg-Id, async with acks awaited) and the same number of raw
// 1 KiB messages with jetstream.PublishAsync and a message id, against one
// server, alternating rounds, and reports both rates and their ratio. It
// runs once with sync_interval: always and once with NATS's default.
func BenchmarkPublish(b *testing.B) {
	for _, mode := range []struct {
		name string
		opts []eventstest.Option
	}{
		{"fsync=always", nil},
		{"fsync=default", []eventstest.Option{eventstest.WithoutSyncAlways()}},
	} {
		b.Run(mode.name, func(b *testing.B) {
			srv := eventstest.Run(b, mode.opts...)
			c := eventstest.Client(b, srv)
			ctx := context.Background()
			js := c.JetStream()
			n := *benchEvents
			payload := strings.Repeat("x", 1024-len(`{"namespace":"","pvc":"","error":""}`))
			var rawTotal, ceTotal time.Duration
			var rawBytes, ceBytes int
			for round := 0; b.Loop(); round++ {
				data := []byte(fmt.Sprintf(`{"namespace":"","pvc":"","error":"%s"}`, payload))
				evs := make([]events.Event, n)
				for i := range evs {
					evs[i] = events.MustNewEvent(events.TypeSnapshotFailed, "/bench", fmt.Sprintf("ce-%d-%d", round, i), events.SnapshotFailed{Error: payload})
				}
				rawBytes, ceBytes = len(data), len(evs[0].Data())

				raw := func() { rawTotal += rawPublish(b, js, round, n, data) }
				contract := func() {
					start := time.Now()
					if err := c.Publish(ctx, evs...); err != nil {
						b.Fatal(err)
					}
					ceTotal += time.Since(start)
				}
				// Alternate which goes first, so neither always writes
				// into the fuller stream.
				if round%2 == 0 {
					raw()
					contract()
				} else {
					contract()
					raw()
				}
			}
			rounds := float64(b.N)
			rawRate := rounds * float64(n) / rawTotal.Seconds()
			ceRate := rounds * float64(n) / ceTotal.Seconds()
			b.ReportMetric(rawRate, "raw_msgs/s")
			b.ReportMetric(ceRate, "contract_events/s")
			b.ReportMetric(ceRate/rawRate, "contract/raw")
			b.Logf("%s: raw %.0f msgs/s (%d B), contract %.0f events/s (%d B data), ratio %.2f",
				mode.name, rawRate, rawBytes, ceRate, ceBytes, ceRate/rawRate)
		})
	}
}

// BenchmarkPublishBatch stores 1 KiB events with sync_interval: always three
// ways, in alternating rounds against one server: raw jetstream.PublishAsync
// (the baseline: one disk sync per message), PublishBatch in chunks of 100,
// and a Batcher shared by 256 goroutines publishing two events at a time
// (as the correlator's handlers do). It reports each rate and its ratio to
// the baseline.
func BenchmarkPublishBatch(b *testing.B) {
	srv := eventstest.Run(b)
	c := eventstest.Client(b, srv)
	ctx := context.Background()
	js := c.JetStream()
	batcher := c.NewBatcher()
	defer batcher.Close()
	n := *benchEvents
	payload := strings.Repeat("x", 1024-len(`{"namespace":"","pvc":"","error":""}`))
	data := []byte(fmt.Sprintf(`{"namespace":"","pvc":"","error":"%s"}`, payload))
	var rawTotal, batchTotal, groupTotal time.Duration
	for round := 0; b.Loop(); round++ {
		mk := func(kind string) []events.Event {
			evs := make([]events.Event, n)
			for i := range evs {
				evs[i] = events.MustNewEvent(events.TypeSnapshotFailed, "/bench", fmt.Sprintf("%s-%d-%d", kind, round, i), events.SnapshotFailed{Error: payload})
			}
			return evs
		}
		batchEvs, groupEvs := mk("batch"), mk("group")
		runs := []func(){
			func() { rawTotal += rawPublish(b, js, round, n, data) },
			func() {
				start := time.Now()
				for chunk := range slices.Chunk(batchEvs, 100) {
					if err := c.PublishBatch(ctx, chunk...); err != nil {
						b.Fatal(err)
					}
				}
				batchTotal += time.Since(start)
			},
			func() {
				start := time.Now()
				work := make(chan []events.Event)
				var wg sync.WaitGroup
				var failed atomic.Pointer[error]
				for range 256 {
					wg.Go(func() {
						for evs := range work {
							if err := batcher.Publish(ctx, evs...); err != nil {
								failed.Store(&err)
							}
						}
					})
				}
				for chunk := range slices.Chunk(groupEvs, 2) {
					work <- chunk
				}
				close(work)
				wg.Wait()
				if err := failed.Load(); err != nil {
					b.Fatal(*err)
				}
				groupTotal += time.Since(start)
			},
		}
		// Rotate which goes first, so none always writes into the fullest stream.
		for i := range runs {
			runs[(round+i)%len(runs)]()
		}
	}
	rounds := float64(b.N)
	rate := func(d time.Duration) float64 { return rounds * float64(n) / d.Seconds() }
	rawRate, batchRate, groupRate := rate(rawTotal), rate(batchTotal), rate(groupTotal)
	b.ReportMetric(rawRate, "raw_msgs/s")
	b.ReportMetric(batchRate/rawRate, "batch/raw")
	b.ReportMetric(groupRate/rawRate, "batcher/raw")
	b.Logf("sync_interval always: raw %.0f msgs/s; PublishBatch (100 per call) %.0f events/s = %.2fx; Batcher (256 callers, 2 events each) %.0f events/s = %.2fx",
		rawRate, batchRate, batchRate/rawRate, groupRate, groupRate/rawRate)
}

// rawPublish is the baseline: n raw messages with jetstream.PublishAsync
// and a message id, acks awaited; it returns how long that took.
func rawPublish(b *testing.B, js jetstream.JetStream, round, n int, data []byte) time.Duration {
	start := time.Now()
	for i := range n {
		if _, err := js.PublishAsync("stateguard.snapshot.failed", data, jetstream.WithMsgID(fmt.Sprintf("raw-%d-%d", round, i)), jetstream.WithStallWait(time.Minute)); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(5 * time.Minute):
		b.Fatal("raw publishes not acknowledged")
	}
	return time.Since(start)
}
