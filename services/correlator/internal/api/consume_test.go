package api

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stateguard/stateguard/pkg/harness/natstest"
	"github.com/stateguard/stateguard/services/correlator/internal/engine"
	"github.com/stateguard/stateguard/services/correlator/internal/model"
	"github.com/stateguard/stateguard/services/correlator/internal/scenariotest"
)

// TestALongNamespaceIsRefusedAndTheCorrelatorStillConsumes is the probe's
// finding against the real engine on a real JetStream: GET
// /v1/apps/<5,000-character namespace>/db answers 400 with the reason, and
// afterwards the correlator still consumes events and answers for them.
// Before, the namespace became a KV key over the server's control line
// limit: nats-server closed the connection for good and consumption
// stopped.
func TestALongNamespaceIsRefusedAndTheCorrelatorStillConsumes(t *testing.T) {
	srv := natstest.Run(t)
	client := natstest.Client(t, srv)
	ctx := t.Context()
	eng, err := engine.New(ctx, engine.Options{Client: client, Rules: model.DefaultRules(), Bucket: "api-test",
		Workers: 4, Consumer: "api-test", Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer eng.Stop(context.Background())
	tokens, err := ParseTokens([]byte("tok\n"), ScopeRead)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	Register(mux, eng, tokens, slog.New(slog.DiscardHandler), time.Now)

	for _, path := range []string{
		"/v1/apps/" + strings.Repeat("a", 5000) + "/db",
		"/v1/snapshots/" + strings.Repeat("a", 5000) + "/s1/why",
	} {
		rr := do(t, mux, path, "tok")
		if rr.Code != http.StatusBadRequest || !strings.Contains(rr.Body.String(), "namespace") {
			t.Errorf("%.40s...: %d %s, want 400 naming the namespace", path, rr.Code, rr.Body.String())
		}
	}

	if err := client.Publish(ctx, scenariotest.CaseStudy()[:9]...); err != nil {
		t.Fatalf("publish after the refused requests: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var p Posture
		code := get(t, mux, "/v1/apps/shop/db", "tok", &p)
		if code == http.StatusOK && len(p.Incidents) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the correlator did not consume the events after the refused requests: last answer %d %+v", code, p.Incidents)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
