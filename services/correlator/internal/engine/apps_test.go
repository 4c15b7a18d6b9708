package engine

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stateguard/stateguard/pkg/harness/natstest"
	"github.com/stateguard/stateguard/services/correlator/internal/api"
	"github.com/stateguard/stateguard/services/correlator/internal/model"
	scenario "github.com/stateguard/stateguard/services/correlator/internal/scenariotest"
	"github.com/stateguard/stateguard/services/correlator/internal/statecodec"
)

var (
	benchListApps  = flag.Int("list-apps", 10_000, "BenchmarkListApps: applications, two per namespace")
	benchListSlots = flag.Int("list-slots", 20, "BenchmarkListApps: snapshots per application")
)

// uncached hides the engine's Revisions: the API then derives every
// namespace on every call, as it did before the view cache.
type uncached struct{ e *Engine }

func (u uncached) Namespaces(ctx context.Context) ([]string, error) { return u.e.Namespaces(ctx) }
func (u uncached) State(ctx context.Context, ns string) (*model.State, bool, error) {
	return u.e.State(ctx, ns)
}
func (u uncached) Rules() model.Rules { return u.e.Rules() }

// apiOf serves the read API over store.
func apiOf(tb testing.TB, store api.Store) http.Handler {
	tb.Helper()
	tokens, err := api.ParseTokens([]byte("read-token\n"), api.ScopeRead)
	if err != nil {
		tb.Fatal(err)
	}
	mux := http.NewServeMux()
	api.Register(mux, store, tokens, slog.New(slog.DiscardHandler), func() time.Time { return scenario.T0.Add(24 * time.Hour) })
	return mux
}

// getBody answers GET path with the read token; it fails unless 200.
func getBody(tb testing.TB, h http.Handler, path string) string {
	tb.Helper()
	req := httptest.NewRequestWithContext(context.Background(), http.MethodGet, path, nil)
	req.Header.Set("Authorization", "Bearer read-token")
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, req)
	if rr.Code != http.StatusOK {
		tb.Fatalf("GET %s: %d %s", path, rr.Code, rr.Body)
	}
	return rr.Body.String()
}

// The views the API keeps follow every write: after each act of the case
// study (and a namespace that goes away from the list), GET /v1/apps,
// /v1/incidents and /v1/certificates answer what deriving every namespace
// afresh answers.
func TestAPIViewsFollowTheState(t *testing.T) {
	c := natstest.Client(t, natstest.Run(t))
	e := startEngine(t, c, &recorder{})
	cached, fresh := apiOf(t, e), apiOf(t, uncached{e})
	m := scenario.MixedStream{Apps: 4, PerNS: 2, Start: scenario.T0}
	publish(t, c, m.Certs()...)
	for _, act := range append(acts(), m.Slot(0), m.Slot(1)) {
		publish(t, c, act...)
		drain(t, c)
		for _, path := range []string{"/v1/apps", "/v1/incidents", "/v1/certificates"} {
			if diff := cmp.Diff(getBody(t, fresh, path), getBody(t, cached, path)); diff != "" {
				t.Fatalf("GET %s (-derived afresh +cached):\n%s", path, diff)
			}
		}
	}
	ns, _ := m.Names(0)
	if err := e.kv.Purge(t.Context(), key(ns)); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(getBody(t, fresh, "/v1/apps"), getBody(t, cached, "/v1/apps")); diff != "" {
		t.Errorf("GET /v1/apps after %s went (-derived afresh +cached):\n%s", ns, diff)
	}
}

// listEngine is an engine whose bucket holds -list-apps applications'
// states (two per namespace, -list-slots snapshots each), built by the
// model and written through the store.
func listEngine(b *testing.B) (*Engine, scenario.MixedStream) {
	c := natstest.ProcessClient(b, natstest.RunProcess(b))
	e, err := New(b.Context(), Options{Client: c, Rules: model.DefaultRules(), Workers: 64})
	if err != nil {
		b.Fatal(err)
	}
	if err := e.Start(b.Context()); err != nil {
		b.Fatal(err)
	}
	m := scenario.MixedStream{Apps: *benchListApps, PerNS: 2, Start: scenario.T0}
	states := map[string]*model.State{}
	evs := m.Certs()
	for k := range *benchListSlots {
		evs = append(evs, m.Slot(k)...)
	}
	for _, ev := range evs {
		in, err := model.FromEvent(ev)
		if err != nil {
			b.Fatal(err)
		}
		st := states[in.Namespace]
		if st == nil {
			st = model.NewState(in.Namespace)
			states[in.Namespace] = st
		}
		if _, _, err := model.Apply(e.Rules(), st, in); err != nil {
			b.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	slots := make(chan struct{}, 256)
	for ns, st := range states {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			if err := e.store.Update(context.Background(), ns, func(s *model.State) (bool, *statecodec.Pending, error) {
				*s = *st
				return true, nil, nil
			}); err != nil {
				b.Error(err)
			}
		})
	}
	wg.Wait()
	return e, m
}

// BenchmarkListApps is GET /v1/apps (the console's first page) over the
// states of -list-apps applications: deriving every namespace per call (as
// before the view cache), from the cache, and from the cache with one
// namespace written before each call.
func BenchmarkListApps(b *testing.B) {
	e, m := listEngine(b)
	b.Run("derive-every-call", func(b *testing.B) {
		h := apiOf(b, uncached{e})
		for b.Loop() {
			getBody(b, h, "/v1/apps")
		}
	})
	b.Run("cached", func(b *testing.B) {
		h := apiOf(b, e)
		getBody(b, h, "/v1/apps")
		for b.Loop() {
			getBody(b, h, "/v1/apps")
		}
	})
	b.Run("cached-one-namespace-written", func(b *testing.B) {
		h := apiOf(b, e)
		getBody(b, h, "/v1/apps")
		i := 0
		for b.Loop() {
			b.StopTimer()
			i++
			ns, app := m.Names(2 * (i % (m.Apps / 2)))
			in, err := model.FromEvent(scenario.Snapshot(ns, "data-"+app, fmt.Sprintf("%s-extra-%d", app, i), scenario.T0.Add(time.Duration(1000+i)*time.Minute),
				scenario.Run{App: app, Versions: []string{app + "-v0"}}))
			if err != nil {
				b.Fatal(err)
			}
			if err := e.store.Update(context.Background(), ns, func(s *model.State) (bool, *statecodec.Pending, error) {
				_, changed, err := model.Apply(e.Rules(), s, in)
				return changed, nil, err
			}); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			getBody(b, h, "/v1/apps")
		}
	})
}
