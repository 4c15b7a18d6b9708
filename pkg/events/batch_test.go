package events_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/events/eventstest"
)

// metricValue reads a counter (or a histogram's sample count) with the
// given labels from reg; 0 when it was never set.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue metrics
				}
			}
			return metricOf(m)
		}
	}
	return 0
}

func metricOf(m *dto.Metric) float64 {
	if h := m.GetHistogram(); h != nil {
		return h.GetSampleSum()
	}
	return m.GetCounter().GetValue()
}

// storedIDs lists the event ids in a stream, in stream order.
func storedIDs(t *testing.T, c *events.Client, stream string) []string {
	t.Helper()
	ctx := context.Background()
	s, err := c.JetStream().Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("message %d of %s: %v", seq, stream, err)
		}
		ids = append(ids, m.Header.Get("Nats-Msg-Id"))
	}
	return ids
}

func failedEvent(id string, size int) events.Event {
	return events.MustNewEvent(events.TypeSnapshotFailed, "/test", id, events.SnapshotFailed{Namespace: "shop", PVC: "data", Error: strings.Repeat("x", size)})
}

// failedEvents returns n small events with ids prefix00, prefix01, … and
// their ids.
func failedEvents(prefix string, n int) ([]events.Event, []string) {
	var evs []events.Event
	var ids []string
	for i := range n {
		id := fmt.Sprintf("%s%02d", prefix, i)
		evs = append(evs, failedEvent(id, 10))
		ids = append(ids, id)
	}
	return evs, ids
}

// publishBatchExpectingOneFallback publishes evs with PublishBatch and
// checks that the SNAPSHOT stream then holds want, in order, and that the
// server refused exactly one batch.
func publishBatchExpectingOneFallback(t *testing.T, c *events.Client, reg *prometheus.Registry, evs []events.Event, want []string) {
	t.Helper()
	if err := c.PublishBatch(t.Context(), evs...); err != nil {
		t.Fatal(err)
	}
	if got := storedIDs(t, c, events.StreamSnapshot); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("stream holds %v, want %v", got, want)
	}
	if got := metricValue(t, reg, "stateguard_events_batches_total", map[string]string{"result": "fallback"}); got != 1 {
		t.Errorf("%v batches refused, want 1", got)
	}
}

func restoreEvent(id string) events.Event {
	return events.MustNewEvent(events.TypeRestoreRecommended, "/test", id, events.RestoreRecommended{Namespace: "shop", App: "db"})
}

func TestPublishBatchStoresEachStreamInAtomicBatches(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := eventstest.Client(t, eventstest.Run(t), events.WithRegisterer(reg))
	var evs []events.Event
	var wantSnap, wantDecision []string
	for i := range 2200 {
		id := fmt.Sprintf("f-%04d", i)
		evs = append(evs, failedEvent(id, 10))
		wantSnap = append(wantSnap, id)
		if i%22 == 0 {
			id := fmt.Sprintf("r-%04d", i)
			evs = append(evs, restoreEvent(id))
			wantDecision = append(wantDecision, id)
		}
	}
	if err := c.PublishBatch(t.Context(), evs...); err != nil {
		t.Fatal(err)
	}
	if got := storedIDs(t, c, events.StreamSnapshot); strings.Join(got, ",") != strings.Join(wantSnap, ",") {
		t.Errorf("SNAPSHOT holds %d events, want the %d published, in order", len(got), len(wantSnap))
	}
	if got := storedIDs(t, c, events.StreamDecision); strings.Join(got, ",") != strings.Join(wantDecision, ",") {
		t.Errorf("DECISION holds %v, want %v", got, wantDecision)
	}
	// 2,200 events of one stream make three batches (1000, 1000, 200),
	// the 100 of the other one; none refused.
	for stream, want := range map[string]float64{events.StreamSnapshot: 3, events.StreamDecision: 1} {
		if got := metricValue(t, reg, "stateguard_events_batches_total", map[string]string{"stream": stream, "result": "atomic"}); got != want {
			t.Errorf("%s: %v atomic batches, want %v", stream, got, want)
		}
		if got := metricValue(t, reg, "stateguard_events_batches_total", map[string]string{"stream": stream, "result": "fallback"}); got != 0 {
			t.Errorf("%s: %v batches refused, want none", stream, got)
		}
	}
	if got := metricValue(t, reg, "stateguard_events_published_total", map[string]string{"type": events.TypeSnapshotFailed}); got != 2200 {
		t.Errorf("published counter %v, want 2200", got)
	}
}

func TestPublishBatchWithAnEventStoredBeforeStoresEachOnce(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := eventstest.Client(t, eventstest.Run(t), events.WithRegisterer(reg))
	if err := c.Publish(t.Context(), failedEvent("b", 10)); err != nil {
		t.Fatal(err)
	}
	// The server refuses the whole batch (it holds a duplicate): it is
	// sent again event by event, and "b" is skipped as Publish skips it.
	more, ids := failedEvents("c", events.MinBatch)
	evs := append([]events.Event{failedEvent("a", 10), failedEvent("b", 10)}, more...)
	publishBatchExpectingOneFallback(t, c, reg, evs, append([]string{"b", "a"}, ids...))
}

func TestPublishBatchToAStreamWithoutAtomicPublishStillStores(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := eventstest.Client(t, eventstest.Run(t), events.WithRegisterer(reg))
	cfg := events.StreamConfigs(events.StreamOptions{})[2]
	if cfg.Name != events.StreamSnapshot {
		t.Fatalf("stream 2 is %s", cfg.Name)
	}
	cfg.AllowAtomicPublish = false
	if _, err := c.JetStream().UpdateStream(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	evs, ids := failedEvents("e", events.MinBatch)
	publishBatchExpectingOneFallback(t, c, reg, evs, ids)
}

func TestBatcherSharesOneBatchAndFailsOnlyTheCallerWithARefusedEvent(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := eventstest.Client(t, eventstest.Run(t), events.WithRegisterer(reg))
	b := c.NewBatcher()
	defer b.Close()

	// Round 1: twenty callers, two events each, in one batch.
	events.HoldRoundsUntil(b, 20)
	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range 20 {
		wg.Go(func() {
			errs[i] = b.Publish(t.Context(), failedEvent(fmt.Sprintf("one-%02d-a", i), 10), failedEvent(fmt.Sprintf("one-%02d-b", i), 10))
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("caller %d: %v", i, err)
		}
	}
	atomic := map[string]string{"stream": events.StreamSnapshot, "result": "atomic"}
	if got := metricValue(t, reg, "stateguard_events_batches_total", atomic); got != 1 {
		t.Errorf("%v batches for twenty callers, want 1", got)
	}
	if got := metricValue(t, reg, "stateguard_events_batch_size", nil); got != 40 {
		t.Errorf("batch of %v events, want 40", got)
	}

	// Round 2: MinBatch callers share a batch; one sends an event larger
	// than the server takes. The batch fails; each caller's events are
	// sent again on their own: only that caller fails.
	events.HoldRoundsUntil(b, events.MinBatch)
	errs = make([]error, events.MinBatch)
	for i := range events.MinBatch {
		wg.Go(func() {
			size := 10
			if i == 2 {
				size = 2 << 20
			}
			errs[i] = b.Publish(t.Context(), failedEvent(fmt.Sprintf("two-%d", i), size))
		})
	}
	wg.Wait()
	for i, err := range errs {
		if (err != nil) != (i == 2) {
			t.Errorf("caller %d: error %v", i, err)
		}
	}
	ids := storedIDs(t, c, events.StreamSnapshot)
	seen := map[string]int{}
	for _, id := range ids {
		seen[id]++
	}
	want := 40 + events.MinBatch - 1
	if len(ids) != want || len(seen) != want || seen["two-2"] != 0 {
		t.Errorf("stream holds %d events (%d distinct), want %d each once, without two-2: %v", len(ids), len(seen), want, ids)
	}
	if got := metricValue(t, reg, "stateguard_events_batches_total", map[string]string{"result": "fallback"}); got != 1 {
		t.Errorf("%v batches refused, want 1", got)
	}
}

func TestFewerEventsThanMinBatchGoOneByOne(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := eventstest.Client(t, eventstest.Run(t), events.WithRegisterer(reg))
	evs, _ := failedEvents("e", events.MinBatch-1)
	if err := c.PublishBatch(t.Context(), evs...); err != nil {
		t.Fatal(err)
	}
	if got := len(storedIDs(t, c, events.StreamSnapshot)); got != len(evs) {
		t.Errorf("stream holds %d events, want %d", got, len(evs))
	}
	for _, result := range []string{"atomic", "fallback"} {
		if got := metricValue(t, reg, "stateguard_events_batches_total", map[string]string{"result": result}); got != 0 {
			t.Errorf("%v batches %s, want none", got, result)
		}
	}
}

func TestBatcherClosedRefusesNewEvents(t *testing.T) {
	c := eventstest.Client(t, eventstest.Run(t))
	b := c.NewBatcher()
	if err := b.Publish(t.Context(), failedEvent("before", 10)); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if err := b.Publish(t.Context(), failedEvent("after", 10)); err == nil {
		t.Fatal("a closed batcher took an event")
	}
	if got := strings.Join(storedIDs(t, c, events.StreamSnapshot), ","); got != "before" {
		t.Errorf("stream holds %s, want before", got)
	}
}
