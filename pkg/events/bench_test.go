package events_test

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/harness/natstest"
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
		opts []natstest.Option
	}{
		{"fsync=always", nil},
		{"fsync=default", []natstest.Option{natstest.WithoutSyncAlways()}},
	} {
		b.Run(mode.name, func(b *testing.B) {
			srv := natstest.Run(b, mode.opts...)
			c := natstest.Client(b, srv)
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

				raw := func() {
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
					rawTotal += time.Since(start)
				}
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
