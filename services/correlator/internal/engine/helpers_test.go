package engine

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/correlator/internal/model"
)

// recorder collects the decisions an engine published.
type recorder struct {
	mu  sync.Mutex
	ids []string
}

func (r *recorder) record(_ string, _ time.Time, ds []model.Decision) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, d := range ds {
		r.ids = append(r.ids, d.ID)
	}
}

func (r *recorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ids)
}

func startEngine(t *testing.T, c *events.Client, rec *recorder) *Engine {
	t.Helper()
	return startEngineWith(t, Options{Client: c, Rules: model.DefaultRules(), Workers: 2, OnPublished: rec.record})
}

// startEngineWith starts an engine of the options and stops it when the
// test ends.
func startEngineWith(t *testing.T, o Options) *Engine {
	t.Helper()
	e, err := New(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = e.Stop(ctx)
	})
	return e
}

func publish(t *testing.T, c *events.Client, evs ...events.Event) {
	t.Helper()
	if err := c.Publish(t.Context(), evs...); err != nil {
		t.Fatal(err)
	}
}

// drain waits until the correlator's consumers have nothing pending.
func drain(t *testing.T, c *events.Client) {
	t.Helper()
	// What the consumers must have acknowledged: the newest message of
	// their subjects now. Pending counts alone can read zero for a moment
	// after a publish, before the consumer has taken the new message into
	// account (seen under load: the decisions of an act not yet stored).
	last := map[string]uint64{}
	for _, cons := range Consumers {
		st, err := c.JetStream().Stream(t.Context(), cons.Stream)
		if err != nil {
			t.Fatal(err)
		}
		for _, typ := range cons.Types {
			m, err := st.GetLastMsgForSubject(t.Context(), events.SubjectOf(typ))
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			last[cons.Suffix] = max(last[cons.Suffix], m.Sequence)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		idle := true
		for _, cons := range Consumers {
			info, err := c.JetStream().Consumer(t.Context(), cons.Stream, "correlator-"+cons.Suffix)
			if err != nil {
				t.Fatal(err)
			}
			ci, err := info.Info(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if ci.NumPending > 0 || ci.NumAckPending > 0 || ci.AckFloor.Stream < last[cons.Suffix] {
				idle = false
			}
		}
		if idle {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("consumers still busy after 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stored reads every event of the given types stored in JetStream.
func stored(t *testing.T, c *events.Client, types ...string) []events.Event {
	t.Helper()
	var out []events.Event
	for _, name := range []string{events.StreamSnapshot, events.StreamCertificate, events.StreamDecision} {
		st, err := c.JetStream().Stream(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
			raw, err := st.GetMsg(t.Context(), seq)
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			ev, err := events.DecodeMsg(&nats.Msg{Subject: raw.Subject, Header: raw.Header, Data: raw.Data})
			if err != nil {
				continue
			}
			if slices.Contains(types, ev.Type()) {
				out = append(out, ev)
			}
		}
	}
	return out
}

var decisionTypes = []string{
	events.TypeSnapshotPinRequested, events.TypeSnapshotUnpinRequested, events.TypeRestoreRecommended,
	events.TypeCertificateRotationRequest, events.TypeIncidentOpened, events.TypeIncidentClosed,
}

// briefs turns stored decisions into sorted "type subject" strings.
func briefs(t *testing.T, evs []events.Event) []string {
	t.Helper()
	var out []string
	for _, ev := range evs {
		var s string
		switch ev.Type() {
		case events.TypeSnapshotPinRequested:
			p, _ := events.Decode[events.SnapshotPinRequested](ev)
			s = "pin " + p.VolumeSnapshot
		case events.TypeSnapshotUnpinRequested:
			p, _ := events.Decode[events.SnapshotUnpinRequested](ev)
			s = "unpin " + p.VolumeSnapshot
		case events.TypeRestoreRecommended:
			p, _ := events.Decode[events.RestoreRecommended](ev)
			s = "restore " + p.PVC + " from " + p.VolumeSnapshot
		case events.TypeCertificateRotationRequest:
			p, _ := events.Decode[events.CertificateRotationRequested](ev)
			s = "rotate " + p.Secret
		case events.TypeIncidentOpened:
			p, _ := events.Decode[events.IncidentOpened](ev)
			s = "incident.opened " + p.App
		case events.TypeIncidentClosed:
			p, _ := events.Decode[events.IncidentClosed](ev)
			s = "incident.closed " + p.App
		default:
			continue
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}
