package events_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/events/eventstest"
)

// A caller's events of one stream are stored in the order it gave them, or
// not at all from the first that is not stored: one sent later is never
// stored before one it follows (a consumer replaying the stream would see
// the later event first, an unpin before its pin). The first event here is
// larger than the server takes; the events after it on the same stream
// are not sent, those of other streams are.
func TestPublishStoresAStreamsEventsInTheCallersOrder(t *testing.T) {
	c := eventstest.Client(t, eventstest.Run(t))
	big := failedEvent("a-big", 2<<20)
	err := c.Publish(t.Context(), big, failedEvent("b", 10), restoreEvent("r"), failedEvent("c", 10))
	if !errors.Is(err, events.ErrEarlierEventFailed) {
		t.Errorf("publish: %v, want the events after a-big refused as %v", err, events.ErrEarlierEventFailed)
	}
	if got := storedIDs(t, c, events.StreamSnapshot); len(got) != 0 {
		t.Errorf("SNAPSHOT holds %v, stored after an earlier event of the caller failed", got)
	}
	if got := strings.Join(storedIDs(t, c, events.StreamDecision), ","); got != "r" {
		t.Errorf("DECISION holds %q, want r (another stream goes on)", got)
	}
}

// The same through PublishBatch: a batch refused as a whole is sent again
// event by event, and there too nothing after a refused event of the
// caller is stored; in the Batcher's small rounds only the caller whose
// event failed loses its later events.
func TestBatchesStoreAStreamsEventsInTheCallersOrder(t *testing.T) {
	c := eventstest.Client(t, eventstest.Run(t))
	more, _ := failedEvents("after", events.MinBatch)
	err := c.PublishBatch(t.Context(), append([]events.Event{failedEvent("first-big", 2<<20)}, more...)...)
	if !errors.Is(err, events.ErrEarlierEventFailed) {
		t.Errorf("publish batch: %v, want the events after first-big refused as %v", err, events.ErrEarlierEventFailed)
	}
	if got := storedIDs(t, c, events.StreamSnapshot); len(got) != 0 {
		t.Errorf("SNAPSHOT holds %v, stored after an earlier event of the caller failed", got)
	}

	b := c.NewBatcher()
	defer b.Close()
	events.HoldRoundsUntil(b, 2)
	var wg sync.WaitGroup
	var errBig, errOther error
	wg.Go(func() { errBig = b.Publish(t.Context(), failedEvent("x-big", 2<<20), failedEvent("x-next", 10)) })
	wg.Go(func() { errOther = b.Publish(t.Context(), failedEvent("y", 10), failedEvent("y-next", 10)) })
	wg.Wait()
	if !errors.Is(errBig, events.ErrEarlierEventFailed) || errOther != nil {
		t.Errorf("batcher: caller with the big event %v, the other %v", errBig, errOther)
	}
	if got := strings.Join(storedIDs(t, c, events.StreamSnapshot), ","); got != "y,y-next" {
		t.Errorf("SNAPSHOT holds %q, want y,y-next", got)
	}
}

// A caller that gave up on the Batcher (its context ended while its events
// waited for a round) was told they may not be stored and sends them
// again: the round does not send them, so a slow stream's rounds do not
// fill with copies of the callers that keep retrying.
func TestBatcherDoesNotSendWhatItsCallerGaveUpOn(t *testing.T) {
	c := eventstest.Client(t, eventstest.Run(t))
	b := c.NewBatcher()
	defer b.Close()
	events.HoldRoundsUntil(b, 2)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := b.Publish(ctx, failedEvent("gave-up", 10)); !errors.Is(err, context.Canceled) {
		t.Fatalf("publish with an ended context: %v", err)
	}
	if err := b.Publish(t.Context(), failedEvent("waited", 10)); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(storedIDs(t, c, events.StreamSnapshot), ","); got != "waited" {
		t.Errorf("SNAPSHOT holds %q, want waited", got)
	}
}
