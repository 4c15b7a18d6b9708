package demo

import (
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/harness/natstest"
)

// An incident the correlator opens again after it closed (a new
// generation: a new incident.opened event of the same incident id) is
// open until its next incident.closed — the demo waits on Closed.
func TestStoryReopenedIncidentIsOpenUntilItClosesAgain(t *testing.T) {
	srv := natstest.Run(t)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	s := &Story{Dir: t.TempDir(), Print: func(line string) { t.Log(line) }}
	sub, err := s.Follow(nc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	const id = "inc-1"
	step, sent := 0, map[string]int{}
	send := func(typ string, payload any) {
		t.Helper()
		step++
		sent[typ]++
		msg, err := events.Encode(events.MustNewEvent(typ, "correlator", fmt.Sprintf("e%d", step), payload))
		if err != nil {
			t.Fatal(err)
		}
		if err := nc.PublishMsg(msg); err != nil {
			t.Fatal(err)
		}
		// Poll with a generous deadline: the machine may be loaded.
		for deadline := time.Now().Add(30 * time.Second); s.Reached(typ) < sent[typ]; {
			if time.Now().After(deadline) {
				t.Fatalf("event %d (%s) not told within 30s", step, typ)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	opened := events.IncidentOpened{Incident: id, Namespace: "shop", App: "api", Versions: []string{"v2"}}
	closed := events.IncidentClosed{Incident: id, Namespace: "shop", App: "api", Reason: "restored"}
	for round, want := range []bool{false, true, false, true} {
		if round%2 == 0 {
			send(events.TypeIncidentOpened, opened)
		} else {
			send(events.TypeIncidentClosed, closed)
		}
		if got := s.Closed(id); got != want {
			t.Errorf("after event %d: Closed = %v, want %v", round+1, got, want)
		}
	}
	if s.Incident() != id {
		t.Errorf("Incident() = %q, want %s", s.Incident(), id)
	}
}
