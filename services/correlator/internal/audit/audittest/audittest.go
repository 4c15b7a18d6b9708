package audittest

import (
	"context"
	"testing"
	"time"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/harness/natstest"
	"github.com/stateguard/stateguard/services/correlator/internal/config"
	"github.com/stateguard/stateguard/services/correlator/internal/engine"
)

// Scene starts JetStream and an engine under the rules file rulesFile,
// publishes evs one after the other (each once the correlator acknowledged
// the one before, so the streams store them in the order they were
// handled) and returns the client and the engine.
func Scene(t *testing.T, rulesFile string, evs []events.Event) (*events.Client, *engine.Engine) {
	t.Helper()
	srv := natstest.Run(t)
	c := natstest.Client(t, srv)
	rules, err := config.ParseRules([]byte(rulesFile))
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.New(t.Context(), engine.Options{Client: c, Rules: rules, RulesVersion: config.RulesVersion([]byte(rulesFile)), Workers: 2})
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
	for _, ev := range evs {
		if err := c.Publish(t.Context(), ev); err != nil {
			t.Fatal(err)
		}
		WaitIdle(t, c, "correlator")
	}
	return c, e
}

// WaitIdle waits until the correlator's consumers (named prefix-<suffix>)
// acknowledged the newest message of their subjects.
func WaitIdle(t *testing.T, c *events.Client, prefix string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		idle := true
		for _, cons := range engine.Consumers {
			s, err := c.JetStream().Stream(t.Context(), cons.Stream)
			if err != nil {
				t.Fatal(err)
			}
			var last uint64
			for _, typ := range cons.Types {
				if m, err := s.GetLastMsgForSubject(t.Context(), events.SubjectOf(typ)); err == nil {
					last = max(last, m.Sequence)
				}
			}
			ci, err := c.JetStream().Consumer(t.Context(), cons.Stream, prefix+"-"+cons.Suffix)
			if err != nil {
				t.Fatal(err)
			}
			info, err := ci.Info(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if info.NumPending > 0 || info.NumAckPending > 0 || info.AckFloor.Stream < last {
				idle = false
			}
		}
		if idle {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the correlator's consumers are still busy after 60s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
