package engine

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/harness/natstest"
	scenario "github.com/stateguard/stateguard/services/correlator/internal/scenariotest"
)

func at(n int) time.Time { return scenario.T0.Add(time.Duration(n) * time.Hour) }

// Each numbered problem of issue 14, with the correlator on a real
// JetStream, from events alone.
func TestLineageProblemsEndToEnd(t *testing.T) {
	run := func(v string) scenario.Run { return scenario.Run{App: "db", Versions: []string{v}} }
	ns := "lineage"
	base := []events.Event{
		scenario.SARIF(ns, "db", "u1", "v1", at(0)),
		scenario.Snapshot(ns, "data", "mon1", at(1), run("v1")),
	}
	for _, tc := range []struct {
		name  string
		evs   []events.Event
		want  []string
		never []string
	}{
		{
			name: "1. a vulnerable version between two weekly snapshots taints the later one",
			evs: []events.Event{
				scenario.Observed(ns, "data", at(25), nil, run("v2")),
				scenario.Observed(ns, "data", at(73), nil, run("v1")),
				scenario.Snapshot(ns, "data", "mon2", at(169), run("v1")),
				scenario.SARIF(ns, "db", "u2", "v2", at(170), scenario.Critical),
			},
			want:  []string{"pin mon1", "incident.opened db", "restore data from mon1"},
			never: []string{"pin mon2"},
		},
		{
			name: "2. the incident opens on the upload, before any snapshot of the version",
			evs: []events.Event{
				scenario.Observed(ns, "data", at(25), nil, run("v2")),
				scenario.SARIF(ns, "db", "u2", "v2", at(26), scenario.Critical),
			},
			want: []string{"pin mon1", "incident.opened db", "restore data from mon1"},
		},
		{
			name: "3. a fix without a restore keeps the incident open and its restore point pinned",
			evs: []events.Event{
				scenario.Observed(ns, "data", at(25), nil, run("v2")),
				scenario.SARIF(ns, "db", "u2", "v2", at(26), scenario.Critical),
				scenario.Observed(ns, "data", at(30), nil, run("v3")),
				scenario.Snapshot(ns, "data", "fix", at(31), run("v3")),
				scenario.SARIF(ns, "db", "u3", "v3", at(32)),
			},
			want:  []string{"pin mon1", "incident.opened db", "restore data from mon1"},
			never: []string{"incident.closed db", "unpin mon1", "pin fix"},
		},
		{
			name: "3. a restore.completed from the clean snapshot closes it",
			evs: []events.Event{
				scenario.Observed(ns, "data", at(25), nil, run("v2")),
				scenario.SARIF(ns, "db", "u2", "v2", at(26), scenario.Critical),
				scenario.Observed(ns, "data", at(30), nil, run("v3")),
				scenario.SARIF(ns, "db", "u3", "v3", at(32)),
				scenario.Restored(ns, "data", "mon1", at(33)),
			},
			want: []string{"pin mon1", "incident.opened db", "restore data from mon1", "incident.closed db"},
		},
		{
			name: "4. key exposure with a 200-day certificate rotates each mounted Secret once",
			evs: []events.Event{
				scenario.Cert(ns, "db-tls", "01", scenario.T0.Add(200*24*time.Hour), 200, nil, nil),
				scenario.Observed(ns, "data", at(25), []string{"db-peer-tls", "db-tls"}, run("v2")),
				scenario.SARIF(ns, "db", "u2", "v2", at(26), scenario.Leak),
			},
			want: []string{"pin mon1", "incident.opened db", "restore data from mon1", "rotate db-peer-tls", "rotate db-tls"},
		},
		{
			name: "a dismissed finding does not make a version vulnerable",
			evs: []events.Event{
				scenario.Dismissed(ns, "db", scenario.Critical, at(20)),
				scenario.Observed(ns, "data", at(25), nil, run("v2")),
				scenario.SARIF(ns, "db", "u2", "v2", at(26), scenario.Critical),
			},
			want:  []string{"pin mon1"},
			never: []string{"incident.opened db"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := natstest.Run(t)
			c := natstest.Client(t, srv)
			startEngine(t, c, &recorder{})
			for _, ev := range append(slices.Clone(base), tc.evs...) {
				publish(t, c, ev) // in order, one at a time
				drain(t, c)
			}
			got := briefs(t, stored(t, c, decisionTypes...))
			for _, w := range tc.want {
				// A pin is requested again when its cause changes
				// (known-good, then an incident's restore point, then
				// known-good again); every other decision exactly once.
				if n := countOf(got, w); n != 1 && (!strings.HasPrefix(w, "pin ") || n == 0) {
					t.Errorf("%q published %d times, want once; all: %v", w, n, got)
				}
			}
			for _, w := range tc.never {
				if slices.Contains(got, w) {
					t.Errorf("%q published; all: %v", w, got)
				}
			}
		})
	}
}

func countOf(list []string, s string) int {
	n := 0
	for _, e := range list {
		if e == s {
			n++
		}
	}
	return n
}

// Problem 5 (and 3): in 50 shuffled orders of the case study, each event
// delivered one to three times, a restore from s2 is recommended (superseding
// one from s1 when s2 came late), and the pin of each recommended snapshot
// is stored before the recommendation.
func TestPinIsStoredBeforeTheRecommendationInEveryOrder(t *testing.T) {
	cs := scenario.CaseStudy()
	// Each order runs against its own server; they wait mostly on JetStream,
	// so they run side by side. `make unit`'s -short loop runs eight.
	orders := 50
	if testing.Short() {
		orders = 8
	}
	for order := range orders {
		t.Run(fmt.Sprintf("order-%02d", order), func(t *testing.T) {
			t.Parallel()
			rnd := rand.New(rand.NewPCG(uint64(order), 14))
			var evs []events.Event
			for _, ev := range cs {
				for range 1 + rnd.IntN(3) {
					evs = append(evs, ev)
				}
			}
			rnd.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
			srv := natstest.Run(t)
			c := natstest.Client(t, srv)
			startEngine(t, c, &recorder{})
			publish(t, c, evs...)
			drain(t, c)
			pins := storedTimes(t, c, events.StreamSnapshot, events.TypeSnapshotPinRequested)
			recs := storedTimes(t, c, events.StreamDecision, events.TypeRestoreRecommended)
			// A better restore point found later supersedes the first
			// recommendation (s3 before s2: s1, then s2); the current one is s2.
			if _, ok := recs["s2"]; !ok || len(recs) > 2 {
				t.Fatalf("order %d: restore recommendations of %v, want s2 current (after at most s1)", order, recs)
			}
			for snap, rt := range recs {
				pt, ok := pins[snap]
				if !ok || !pt.Before(rt) {
					t.Fatalf("order %d: recommendation of %s stored at %s, its pin at %s (found %t)", order, snap, rt, pt, ok)
				}
			}
			srv.Shutdown()
		})
	}
}

// storedTimes maps the volume_snapshot of each event of typ on stream to
// when JetStream stored it (the first one).
func storedTimes(t *testing.T, c *events.Client, stream, typ string) map[string]time.Time {
	t.Helper()
	st, err := c.JetStream().Stream(t.Context(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]time.Time{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		raw, err := st.GetMsg(t.Context(), seq)
		if err != nil {
			continue
		}
		if raw.Subject != events.SubjectOf(typ) {
			continue
		}
		snap := volumeSnapshotOf(raw)
		if _, seen := out[snap]; !seen {
			out[snap] = raw.Time
		}
	}
	return out
}

func volumeSnapshotOf(m *jetstream.RawStreamMsg) string {
	_, after, _ := strings.Cut(string(m.Data), `"volume_snapshot":"`)
	name, _, _ := strings.Cut(after, `"`)
	return name
}
