package model

import (
	"fmt"
	"slices"
	"testing"

	"github.com/stateguard/stateguard/pkg/events"
	scenario "github.com/stateguard/stateguard/services/correlator/internal/scenariotest"
)

// failedOnly are the names of the snapshots st remembers that failed and
// never completed, sorted.
func failedOnly(st *State) []string {
	var out []string
	for name, s := range st.Snapshots {
		if !s.Completed && len(s.Failed) > 0 {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// failingStory is an hourly policy on claim "data" where every fourth
// snapshot fails and never completes: n slots, version v1 throughout.
func failingStory(ns string, n int) (evs []events.Event, failures []string) {
	run := scenario.Run{App: "db", Versions: []string{"v1"}}
	evs = append(evs, scenario.SARIF(ns, "db", "u1", "v1", hr(0)))
	for i := range n {
		name := fmt.Sprintf("s-%03d", i)
		if i%4 == 3 {
			evs = append(evs, scenario.SnapshotFailedAt(ns, "data", name, hr(i)))
			failures = append(failures, name)
			continue
		}
		evs = append(evs, scenario.Snapshot(ns, "data", name, hr(i), run))
	}
	return evs, failures
}

// A snapshot that failed and never completed is remembered until its
// claim has `history` completed snapshots newer than the failure
// (forgettableFailures): one record per failure kept forever was slow,
// unbounded growth of the state.
func TestFailedSnapshotsAreForgotten(t *testing.T) {
	r := DefaultRules()
	r.History = 8
	evs, failures := failingStory("fail", 200)
	st := NewState("fail")
	feed(t, r, st, evs...)
	// 8 completed snapshots are newer than s-187 (s-188 … s-198 less
	// s-191 and s-195): the failures s-191, s-195 and s-199 stay.
	want := []string{"s-191", "s-195", "s-199"}
	if got := failedOnly(st); !slices.Equal(got, want) {
		t.Fatalf("%d of %d failures remembered %v, want %v", len(got), len(failures), got, want)
	}

	// The same failures again (a redelivery) and late: nothing comes back.
	feed(t, r, st, evs[:40]...)
	if got := failedOnly(st); !slices.Equal(got, want) {
		t.Fatalf("after a late redelivery: failures remembered %v, want %v", got, want)
	}

	// A snapshot.completed for a forgotten failure (the snapshotter reports
	// one or the other; both only when it crashed between publishing the
	// failure and marking it reported while the snapshot became ready): an
	// old snapshot of the same versions, forgotten too, never pinned.
	av, _ := Derive(r, st).App("db")
	kg := av.KnownGood["data"]
	feed(t, r, st, scenario.Snapshot("fail", "data", "s-003", hr(3), scenario.Run{App: "db", Versions: []string{"v1"}}))
	if _, ok := st.Snapshots["s-003"]; ok {
		t.Errorf("the late completion of the forgotten failure s-003 is remembered")
	}
	if av, _ := Derive(r, st).App("db"); !slices.Equal(av.KnownGood["data"], kg) {
		t.Errorf("known-good %v after a late completion of a forgotten failure, want %v", av.KnownGood["data"], kg)
	}
}

// Whatever the order, the failures remembered at the end are the same:
// the rule counts completed snapshots newer than the failure, which only
// grow, and prune keeps the `history` newest of them.
func TestFailuresForgottenInAnyOrder(t *testing.T) {
	r := DefaultRules()
	r.History = 8
	evs, _ := failingStory("fail", 120)
	inOrder := NewState("fail")
	feed(t, r, inOrder, evs...)
	want := failedOnly(inOrder)
	for p := range uint64(6) {
		st := NewState("fail")
		feed(t, r, st, permute(evs, p)...)
		if got := failedOnly(st); !slices.Equal(got, want) {
			t.Fatalf("permutation %d: failures remembered %v, in order %v", p, got, want)
		}
	}
}

// A restore test reported for a snapshot already forgotten (late, or
// delivered again) made a record that was never forgotten: it had no
// time. It is timed by the test's report now, and forgotten as a failure
// is; a test of a snapshot not completed yet stays until its completion.
func TestLateRestoreTestOfAForgottenSnapshotIsForgotten(t *testing.T) {
	r := DefaultRules()
	r.History = 8
	run := scenario.Run{App: "db", Versions: []string{"v1"}}
	st := NewState("late")
	feed(t, r, st, scenario.SARIF("late", "db", "u1", "v1", hr(0)))
	for i := range 40 {
		feed(t, r, st, scenario.Snapshot("late", "data", fmt.Sprintf("s-%03d", i), hr(i), run))
	}
	if _, ok := st.Snapshots["s-003"]; ok {
		t.Fatalf("s-003 is remembered after 40 newer slots with history 8: the story does not forget it")
	}
	feed(t, r, st, scenario.VerifiedAt("late", "data", "s-003", false, hr(4)))
	if s, ok := st.Snapshots["s-003"]; ok {
		t.Errorf("the late restore test of the forgotten s-003 left a record (completed %t, time %v, tests %v)", s.Completed, s.Time, s.Verifications)
	}

	// A test that comes before its snapshot's completion, among the
	// history newest, is kept and the completion finds it.
	feed(t, r, st, scenario.VerifiedAt("late", "data", "s-040", false, hr(41)))
	if s := st.Snapshots["s-040"]; s == nil || len(s.Verifications) != 1 {
		t.Fatalf("the restore test of s-040, not completed yet, is not kept: %+v", s)
	}
	feed(t, r, st, scenario.Snapshot("late", "data", "s-040", hr(40), run))
	if s := st.Snapshots["s-040"]; !s.Completed || !s.Time.Equal(hr(40)) || s.Verifications == nil {
		t.Errorf("s-040 after its completion: completed %t, time %v (want %v), tests %v", s.Completed, s.Time, hr(40), s.Verifications)
	}
	if av, _ := Derive(r, st).App("db"); slices.Contains(av.KnownGood["data"], "s-040") {
		t.Errorf("s-040 failed its restore test but is known-good: %v", av.KnownGood["data"])
	}
}
