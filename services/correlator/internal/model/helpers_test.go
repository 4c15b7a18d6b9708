package model

import (
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"testing"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/correlator/internal/ordered"
)

// feed applies evs to st in order and returns every decision taken,
// checking the view cache after each event (checkCache).
func feed(t *testing.T, r Rules, st *State, evs ...events.Event) []Decision {
	t.Helper()
	return applyEvents(t, r, st, func(id string) { checkCache(t, r, st, id) }, evs...)
}

// applyEvents applies evs to st in order, calls after (when not nil) with
// each applied event's id, and returns every decision taken.
func applyEvents(t *testing.T, r Rules, st *State, after func(id string), evs ...events.Event) []Decision {
	t.Helper()
	var out []Decision
	for _, ev := range evs {
		in, err := FromEvent(ev)
		if errors.Is(err, ErrIgnored) {
			continue
		}
		if err != nil {
			t.Fatalf("from event %s: %v", ev.ID(), err)
		}
		ds, _, err := Apply(r, st, in)
		if err != nil {
			t.Fatalf("apply %s: %v", ev.ID(), err)
		}
		out = append(out, ds...)
		if after != nil {
			after(ev.ID())
		}
	}
	return out
}

// checkCache fails when the views Apply keeps between events differ from
// a derivation from scratch.
func checkCache(t *testing.T, r Rules, st *State, after string) {
	t.Helper()
	fresh, err := json.Marshal(Derive(r, st))
	if err != nil {
		t.Fatal(err)
	}
	cached, err := json.Marshal(st.derive(r))
	if err != nil {
		t.Fatal(err)
	}
	// The kept snapshot names follow every snapshot that came or went
	// (asked for here, so the next event keeps them).
	if st.namesOK && !slices.Equal(st.names, ordered.Keys(st.Snapshots)) {
		t.Fatalf("after %s the kept snapshot names are %v, the state has %v", after, st.names, ordered.Keys(st.Snapshots))
	}
	_ = st.SnapshotNames()
	for name := range st.Journal.PinGeneration {
		_, known := st.Snapshots[name]
		_, pinned := st.Ledger.Pinned[name]
		if !known && !pinned {
			t.Fatalf("after %s the journal keeps the pin generation of %s, gone for good", after, name)
		}
	}
	if c := st.cache; c != nil {
		want := map[string]int{}
		for _, s := range st.Snapshots {
			for _, w := range s.Workloads {
				want[w.App]++
			}
		}
		for _, u := range st.Uploads {
			want[u.App]++
		}
		if !maps.Equal(want, c.refs) {
			t.Fatalf("after %s the cache counts %v references per application, the state has %v", after, c.refs, want)
		}
		if !maps.EqualFunc(completedByPVC(st), c.byPVC, slices.Equal) {
			t.Fatalf("after %s the cache's completed snapshots per PVC differ from the state's", after)
		}
		if !maps.EqualFunc(timelines(st), c.byApp, slices.Equal) {
			t.Fatalf("after %s the cache's timelines differ from the state's", after)
		}
	}
	if string(fresh) != string(cached) {
		t.Fatalf("after %s the cached view differs from a fresh derivation:\nfresh:  %s\ncached: %s", after, fresh, cached)
	}
	// The ledger is what the whole view calls for (Apply decides only over
	// what the event changed).
	v := Derive(r, st)
	want := map[string]string{}
	for name, p := range v.Pins {
		want["pin/"+name] = p.Reason
	}
	for _, av := range v.Apps {
		for _, inc := range av.Incidents {
			want["incident/"+inc.ID] = map[bool]string{true: StatusOpen, false: StatusClosed}[inc.Open]
		}
	}
	if got := st.Ledger.InForce(); !maps.Equal(want, got) {
		t.Fatalf("after %s the ledger holds %v, the view calls for %v", after, got, want)
	}
}

// brief is a decision as "type subject", for readable comparisons.
func brief(ds []Decision) []string {
	var out []string
	for _, d := range ds {
		switch p := d.Payload.(type) {
		case events.SnapshotPinRequested:
			out = append(out, "pin "+p.VolumeSnapshot)
		case events.SnapshotUnpinRequested:
			out = append(out, "unpin "+p.VolumeSnapshot)
		case events.IncidentOpened:
			out = append(out, "incident.opened "+p.App)
		case events.IncidentClosed:
			out = append(out, "incident.closed "+p.App)
		case events.RestoreRecommended:
			out = append(out, "restore "+p.PVC+" from "+p.VolumeSnapshot)
		case events.CertificateRotationRequested:
			out = append(out, "rotate "+p.Secret)
		default:
			out = append(out, d.Type)
		}
	}
	return out
}
