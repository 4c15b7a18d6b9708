package observe_test

import (
	"context"
	"crypto/x509"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/harness/natstest"

	"github.com/stateguard/stateguard/services/certwatcher/internal/certgentest"
	"github.com/stateguard/stateguard/services/certwatcher/internal/inventory"
	"github.com/stateguard/stateguard/services/certwatcher/internal/observe"
	"github.com/stateguard/stateguard/services/certwatcher/internal/streamtest"
)

// counting publishes through the real client and counts the calls, so a
// test tells "not published" from "published and deduplicated".
type counting struct {
	*events.Client
	calls atomic.Int64
}

func (c *counting) Publish(ctx context.Context, evs ...events.Event) error {
	c.calls.Add(int64(len(evs)))
	return c.Client.Publish(ctx, evs...)
}

type users map[string]events.CertificateUsers

func (u users) Users(namespace, secret string) events.CertificateUsers {
	return u[namespace+"/"+secret]
}
func (users) CertManager(string, string) *events.CertManagerInfo { return nil }

// TestObservedOnFirstSightAndChangesOnly runs the observer over a store
// against real JetStream: a certificate is published on first sight and
// when its users or serial change, never on an unchanged resync, and a new
// process (empty memory) republishes with the same ids.
func TestObservedOnFirstSightAndChangesOnly(t *testing.T) {
	srv := natstest.Run(t)
	c := natstest.Client(t, srv)
	pub := &counting{Client: c}
	clk := clocktesting.NewFakeClock(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
	store := inventory.New(nil)
	u := users{}
	o := &observe.Observer{Store: store, Publisher: pub, Context: u, Clock: clk, Log: slog.New(slog.DiscardHandler)}
	ctx := t.Context()

	v1 := certgentest.New(t, certgentest.CommonName("db"), certgentest.Serial(1), certgentest.NotAfter(clk.Now().Add(200*24*time.Hour)))
	put := func(p *certgentest.Pair) {
		store.ReplaceSecret("shop", "db-tls", []inventory.Record{{
			Source: events.CertificateSource{Namespace: "shop", Secret: "db-tls", Key: "tls.crt"}, Chain: []*x509.Certificate{p.Cert},
		}})
	}
	put(v1)
	step := func(what string, wantCalls int64, wantStored int) []events.CertificateObserved {
		t.Helper()
		if err := o.ObserveAll(ctx); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if got := pub.calls.Load(); got != wantCalls {
			t.Errorf("%s: %d publications, want %d", what, got, wantCalls)
		}
		got := streamtest.Payloads[events.CertificateObserved](t, streamtest.Stored(t, c, events.TypeCertificateObserved))
		if len(got) != wantStored {
			t.Errorf("%s: %d stored, want %d: %+v", what, len(got), wantStored, got)
		}
		return got
	}
	got := step("first sight", 1, 1)
	if got[0].Certificate.Serial != "1" || got[0].DaysLeft < 199 || !got[0].ObservedAt.Equal(clk.Now()) {
		t.Errorf("first observation %+v", got[0])
	}
	clk.Step(time.Hour)
	step("an unchanged resync, an hour later", 1, 1)

	pod := events.ObjectRef{Kind: "Pod", Namespace: "shop", Name: "db-0"}
	u["shop/db-tls"] = events.CertificateUsers{Pods: []events.ObjectRef{pod}}
	got = step("a pod starts mounting it", 2, 2)
	if diff := cmp.Diff([]events.ObjectRef{pod}, got[1].Users.Pods); diff != "" {
		t.Errorf("users (-want +got)\n%s", diff)
	}

	put(certgentest.New(t, certgentest.CommonName("db"), certgentest.Serial(2), certgentest.NotAfter(clk.Now().Add(300*24*time.Hour))))
	got = step("a new serial", 3, 3)
	if got[2].Certificate.Serial != "2" {
		t.Errorf("serial %s, want 2", got[2].Certificate.Serial)
	}

	// A restarted certwatcher knows nothing: its start-up resync publishes
	// again, with the same id, which JetStream drops.
	o2 := &observe.Observer{Store: store, Publisher: pub, Context: u, Clock: clk, Log: slog.New(slog.DiscardHandler)}
	if err := o2.ObserveAll(ctx); err != nil {
		t.Fatal(err)
	}
	if got := len(streamtest.Stored(t, c, events.TypeCertificateObserved)); got != 3 || pub.calls.Load() != 4 {
		t.Errorf("after a restart: %d stored (want 3), %d publications (want 4)", got, pub.calls.Load())
	}
}
