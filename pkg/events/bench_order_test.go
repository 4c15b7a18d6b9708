package events_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/events/eventstest"
)

// BenchmarkOrderedRun compares the two ways a caller's run of n events of
// one stream can be stored in order with sync_interval: always — each once
// the one before is stored, or as one atomic batch — for runs of 1 to 16
// events, by one caller at a time (the latency of a run) and by 32 callers
// at once (the rate when the disk is busy), in alternating rounds against
// one server. It reports the time per run of each way and their ratio.
func BenchmarkOrderedRun(b *testing.B) {
	srv := eventstest.Run(b)
	c := eventstest.Client(b, srv)
	ctx := context.Background()
	payload := strings.Repeat("x", 200)
	seq := 0
	mk := func(n int) []events.Event {
		evs := make([]events.Event, n)
		for i := range evs {
			seq++
			evs[i] = events.MustNewEvent(events.TypeSnapshotFailed, "/bench", fmt.Sprintf("run-%d", seq), events.SnapshotFailed{Error: payload})
		}
		return evs
	}
	ways := []struct {
		name string
		pub  func(context.Context, ...events.Event) error
	}{
		{"one-by-one", func(ctx context.Context, evs ...events.Event) error { return events.PublishOneByOne(c, ctx, evs...) }},
		{"atomic", func(ctx context.Context, evs ...events.Event) error { return events.PublishAtomic(c, ctx, evs...) }},
	}
	for _, callers := range []int{1, 32} {
		for _, n := range []int{1, 2, 4, 10, 16} {
			b.Run(fmt.Sprintf("callers=%d/events=%d", callers, n), func(b *testing.B) {
				runs := 200 / callers * callers
				if callers == 1 {
					runs = 100
				}
				total := make([]time.Duration, len(ways))
				var lat [2][]time.Duration
				for round := 0; b.Loop(); round++ {
					for k := range ways {
						wi := (round + k) % len(ways)
						w := ways[wi]
						work := make(chan []events.Event, runs)
						for range runs {
							work <- mk(n)
						}
						close(work)
						var mu sync.Mutex
						start := time.Now()
						var wg sync.WaitGroup
						for range callers {
							wg.Go(func() {
								for evs := range work {
									t := time.Now()
									if err := w.pub(ctx, evs...); err != nil {
										b.Error(err)
										return
									}
									mu.Lock()
									lat[wi] = append(lat[wi], time.Since(t))
									mu.Unlock()
								}
							})
						}
						wg.Wait()
						total[wi] += time.Since(start)
					}
				}
				p50 := func(ds []time.Duration) time.Duration {
					ds = slices.Clone(ds)
					slices.Sort(ds)
					return ds[len(ds)/2]
				}
				per := func(i int) time.Duration { return total[i] / time.Duration(b.N*runs) }
				b.ReportMetric(float64(per(1))/float64(per(0)), "atomic/one-by-one")
				b.Logf("callers %d, %d events per run: one by one %s per run (p50 latency %s), atomic %s (p50 %s): atomic/one-by-one %.2f",
					callers, n, per(0), p50(lat[0]), per(1), p50(lat[1]), float64(per(1))/float64(per(0)))
			})
		}
	}
}
