package retention

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// hourly returns n ready snapshots, one per hour from start.
func hourly(start time.Time, n int) []Snapshot {
	s := make([]Snapshot, n)
	for i := range s {
		ts := start.Add(time.Duration(i) * time.Hour)
		s[i] = Snapshot{Name: "snap-" + ts.Format("20060102-15"), Time: ts}
	}
	return s
}

func TestApply(t *testing.T) {
	day := func(d, h int) time.Time { return t0.Add(time.Duration(d)*24*time.Hour + time.Duration(h)*time.Hour) }
	snap := func(name string, ts time.Time, mods ...func(*Snapshot)) Snapshot {
		s := Snapshot{Name: name, Time: ts}
		for _, m := range mods {
			m(&s)
		}
		return s
	}
	pinned := func(s *Snapshot) { s.Pinned = true }
	failed := func(s *Snapshot) { s.State = Failed }
	pending := func(s *Snapshot) { s.State = Pending }
	tests := []struct {
		name   string
		policy Policy
		snaps  []Snapshot
		now    time.Time
		want   map[string]string // name -> reasons of kept
		del    map[string]string // name -> reasons of deleted
	}{
		{
			name:   "keepLast keeps the newest n",
			policy: Policy{KeepLast: 2},
			snaps:  []Snapshot{snap("a", day(0, 0)), snap("b", day(1, 0)), snap("c", day(2, 0))},
			now:    day(3, 0),
			want:   map[string]string{"c": "newest ready, last", "b": "last"},
			del:    map[string]string{"a": "matched no keep rule"},
		},
		{
			name:   "daily keeps the newest of each day",
			policy: Policy{Daily: 2},
			snaps:  []Snapshot{snap("d0h1", day(0, 1)), snap("d0h9", day(0, 9)), snap("d1h1", day(1, 1)), snap("d1h5", day(1, 5))},
			now:    day(2, 0),
			want:   map[string]string{"d1h5": "newest ready, daily", "d0h9": "daily"},
			del:    map[string]string{"d1h1": "matched no keep rule", "d0h1": "matched no keep rule"},
		},
		{
			name:   "days follow the policy time zone",
			policy: Policy{Daily: 2, Location: time.FixedZone("UTC+3", 3*3600)},
			// 20:00 UTC on day 0 is 23:00 local day 0; 22:00 UTC is 01:00 local day 1.
			snaps: []Snapshot{snap("u20", day(0, 20)), snap("u22", day(0, 22)), snap("u23", day(0, 23))},
			now:   day(1, 0),
			want:  map[string]string{"u23": "newest ready, daily", "u20": "daily"},
			del:   map[string]string{"u22": "matched no keep rule"},
		},
		{
			name:   "a pinned snapshot is never deleted",
			policy: Policy{KeepLast: 1, MaxAge: time.Hour},
			snaps:  []Snapshot{snap("old", day(0, 0), pinned), snap("mid", day(1, 0)), snap("new", day(2, 0))},
			now:    day(2, 0),
			want:   map[string]string{"new": "newest ready, last", "old": "pinned"},
			del:    map[string]string{"mid": "older than maxAge"},
		},
		{
			name:   "the newest ready snapshot survives maxAge",
			policy: Policy{KeepLast: 5, MaxAge: 24 * time.Hour},
			snaps:  []Snapshot{snap("a", day(0, 0)), snap("b", day(1, 0)), snap("failed", day(9, 0), failed)},
			now:    day(10, 0),
			want:   map[string]string{"b": "newest ready"},
			del:    map[string]string{"a": "older than maxAge", "failed": "failed"},
		},
		{
			name:   "pending snapshots are kept and do not count",
			policy: Policy{KeepLast: 1},
			snaps:  []Snapshot{snap("a", day(0, 0)), snap("b", day(1, 0)), snap("p", day(2, 0), pending)},
			now:    day(2, 0),
			want:   map[string]string{"p": "pending", "b": "newest ready, last"},
			del:    map[string]string{"a": "matched no keep rule"},
		},
		{
			name:   "an empty policy keeps everything",
			policy: Policy{},
			snaps:  []Snapshot{snap("a", day(0, 0)), snap("b", day(1, 0))},
			now:    day(2, 0),
			want:   map[string]string{"b": "newest ready, no retention policy", "a": "no retention policy"},
			del:    map[string]string{},
		},
		{
			name:   "a pinned failed snapshot is kept",
			policy: Policy{KeepLast: 1},
			snaps:  []Snapshot{snap("f", day(0, 0), failed, pinned), snap("b", day(1, 0))},
			now:    day(2, 0),
			want:   map[string]string{"b": "newest ready, last", "f": "pinned"},
			del:    map[string]string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Apply(tt.policy, tt.snaps, tt.now)
			got, del := map[string]string{}, map[string]string{}
			for _, d := range p.Decisions {
				if d.Keep {
					got[d.Snapshot.Name] = d.Why.String()
				} else {
					del[d.Snapshot.Name] = d.Why.String()
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("kept (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.del, del); diff != "" {
				t.Errorf("deleted (-want +got):\n%s", diff)
			}
		})
	}
}

// TestYearOfHourly checks the keep set of a year of hourly snapshots under a
// GFS policy against the table in testdata/ (rewrite with -update), and
// independently against the counts the policy implies.
func TestYearOfHourly(t *testing.T) {
	snaps := hourly(t0, 365*24) // 2025-01-01T00 … 2025-12-31T23
	p := Policy{KeepLast: 3, Hourly: 24, Daily: 7, Weekly: 4, Monthly: 12, Yearly: 3}
	now := t0.Add(365 * 24 * time.Hour)
	plan := Apply(p, snaps, now)

	var b strings.Builder
	fmt.Fprintf(&b, "# policy: keepLast=3 hourly=24 daily=7 weekly=4 monthly=12 yearly=3, UTC\n")
	fmt.Fprintf(&b, "# input: %d hourly snapshots from %s\n", len(snaps), t0.Format(time.RFC3339))
	for _, d := range plan.Kept() {
		fmt.Fprintf(&b, "%s\t%s\n", d.Snapshot.Time.Format(time.RFC3339), d.Why)
	}
	golden := filepath.Join("testdata", "year-hourly.keep")
	if *update {
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("read golden (run with -update to create it): %v", err)
	}
	if diff := cmp.Diff(string(want), b.String()); diff != "" {
		t.Errorf("keep set (-want +got):\n%s", diff)
	}

	// Independent check: the last 24 hours, the last hour of the last 7
	// days, the last snapshot of the last 4 ISO weeks (Sundays 23:00, and
	// the newest, Wed 2025-12-31 23:00), the last of each of the 12 months,
	// and the one year there is.
	wantSet := map[time.Time]bool{}
	last := snaps[len(snaps)-1].Time
	for h := range 24 {
		wantSet[last.Add(-time.Duration(h)*time.Hour)] = true
	}
	for d := range 7 {
		wantSet[last.Add(-time.Duration(d)*24*time.Hour)] = true
	}
	for _, s := range []string{"2025-12-28T23:00:00Z", "2025-12-21T23:00:00Z", "2025-12-14T23:00:00Z"} {
		ts, _ := time.Parse(time.RFC3339, s)
		wantSet[ts] = true
	}
	for m := time.January; m <= time.December; m++ {
		wantSet[time.Date(2025, m+1, 1, 0, 0, 0, 0, time.UTC).Add(-time.Hour)] = true
	}
	gotSet := map[time.Time]bool{}
	for _, d := range plan.Kept() {
		gotSet[d.Snapshot.Time] = true
	}
	if diff := cmp.Diff(wantSet, gotSet); diff != "" {
		t.Errorf("keep set against the policy's arithmetic (-want +got):\n%s", diff)
	}
	if got, want := len(plan.Deleted()), len(snaps)-len(wantSet); got != want {
		t.Errorf("deleted %d, want %d", got, want)
	}
	for _, d := range plan.Deleted() {
		if d.Why != DeleteUnmatched {
			t.Fatalf("deletion %s has reason %q, want %q", d.Snapshot.Name, d.Why, DeleteUnmatched)
		}
	}
}

func TestApplyDoesNotModifyInput(t *testing.T) {
	snaps := hourly(t0, 10)
	before := append([]Snapshot(nil), snaps...)
	Apply(Policy{KeepLast: 2}, snaps, t0)
	if diff := cmp.Diff(before, snaps); diff != "" {
		t.Errorf("input changed (-before +after):\n%s", diff)
	}
}

func BenchmarkApplyOnePVC100k(b *testing.B) {
	snaps := hourly(t0, 100_000)
	p := Policy{KeepLast: 3, Hourly: 24, Daily: 7, Weekly: 4, Monthly: 12, Yearly: 5, MaxAge: 5 * 365 * 24 * time.Hour, Location: mustLoad(b, "Europe/Berlin")}
	now := snaps[len(snaps)-1].Time
	b.ReportAllocs()
	for b.Loop() {
		Apply(p, snaps, now)
	}
}

func BenchmarkApply10kPVCs10Each(b *testing.B) {
	pvcs := make([][]Snapshot, 10_000)
	for i := range pvcs {
		pvcs[i] = hourly(t0.Add(time.Duration(i)*time.Minute), 10)
	}
	p := Policy{KeepLast: 3, Hourly: 24, Daily: 7, Weekly: 4, Monthly: 12, Yearly: 5, Location: mustLoad(b, "Europe/Berlin")}
	now := t0.Add(24 * time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		for _, s := range pvcs {
			Apply(p, s, now)
		}
	}
}

func mustLoad(tb testing.TB, name string) *time.Location {
	tb.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		tb.Fatal(err)
	}
	return loc
}
