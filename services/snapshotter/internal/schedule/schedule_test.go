package schedule

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	clocktesting "k8s.io/utils/clock/testing"
)

func mustParse(t *testing.T, expr, tz string) Schedule {
	t.Helper()
	s, err := Parse(expr, tz)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func TestDue(t *testing.T) {
	tests := []struct {
		name       string
		expr, tz   string
		last, now  string
		wantSlot   string
		wantMissed []string
		wantNext   string
	}{
		{
			name: "nothing due before the first slot",
			expr: "0 * * * *", last: "2025-01-01T10:00:00Z", now: "2025-01-01T10:59:59Z",
			wantNext: "2025-01-01T11:00:00Z",
		},
		{
			name: "the slot fires exactly at its time",
			expr: "0 * * * *", last: "2025-01-01T10:00:00Z", now: "2025-01-01T11:00:00Z",
			wantSlot: "2025-01-01T11:00:00Z", wantNext: "2025-01-01T12:00:00Z",
		},
		{
			name: "after downtime one catch-up and the missed slots",
			expr: "0 * * * *", last: "2025-01-01T10:00:00Z", now: "2025-01-01T14:30:00Z",
			wantSlot:   "2025-01-01T14:00:00Z",
			wantMissed: []string{"2025-01-01T11:00:00Z", "2025-01-01T12:00:00Z", "2025-01-01T13:00:00Z"},
			wantNext:   "2025-01-01T15:00:00Z",
		},
		{
			name: "the time zone decides the wall clock",
			expr: "0 2 * * *", tz: "Europe/Berlin", last: "2025-06-01T00:00:00Z", now: "2025-06-02T00:30:00Z",
			wantSlot: "2025-06-02T00:00:00Z", wantNext: "2025-06-03T00:00:00Z",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustParse(t, tt.expr, tt.tz)
			r := s.Due(ts(tt.last), ts(tt.now))
			var slot time.Time
			if tt.wantSlot != "" {
				slot = ts(tt.wantSlot)
			}
			var missed []time.Time
			for _, m := range tt.wantMissed {
				missed = append(missed, ts(m))
			}
			want := Run{Slot: slot, Missed: missed, MissedTotal: len(missed), Next: ts(tt.wantNext)}
			if diff := cmp.Diff(want, r); diff != "" {
				t.Errorf("Due (-want +got):\n%s", diff)
			}
		})
	}
}

// TestFiringWithFakeClock steps an injected clock through a day and runs
// every due slot, as the controller does.
func TestFiringWithFakeClock(t *testing.T) {
	clk := clocktesting.NewFakeClock(ts("2025-03-01T00:00:00Z"))
	s := mustParse(t, "*/15 * * * *", "UTC")
	last := clk.Now()
	var fired []string
	for range 8 {
		clk.Step(10 * time.Minute)
		if r := s.Due(last, clk.Now()); !r.Slot.IsZero() {
			fired = append(fired, r.Slot.Format("15:04"))
			last = r.Slot
		}
	}
	want := []string{"00:15", "00:30", "00:45", "01:00", "01:15"}
	if diff := cmp.Diff(want, fired); diff != "" {
		t.Errorf("fired (-want +got):\n%s", diff)
	}
}

func TestMissedIsBounded(t *testing.T) {
	s := mustParse(t, "* * * * *", "")
	r := s.Due(ts("2025-01-01T00:00:00Z"), ts("2025-01-02T00:00:00Z"))
	if r.MissedTotal != 24*60-1 || len(r.Missed) != MaxMissed {
		t.Fatalf("missed total %d listed %d, want %d and %d", r.MissedTotal, len(r.Missed), 24*60-1, MaxMissed)
	}
	if got, want := r.Missed[len(r.Missed)-1], ts("2025-01-01T23:59:00Z"); !got.Equal(want) {
		t.Errorf("newest missed %s, want %s", got, want)
	}
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct{ expr, tz string }{
		{"not a cron", ""}, {"0 * * * *", "Mars/Olympus"}, {"CRON_TZ=UTC 0 * * * *", ""}, {"0 0 * * * *", ""},
	} {
		if _, err := Parse(c.expr, c.tz); err == nil {
			t.Errorf("Parse(%q, %q) = nil error", c.expr, c.tz)
		}
	}
}

func TestSnapshotNameSubMinute(t *testing.T) {
	a := SnapshotName("p", "v", ts("2025-01-02T03:04:00Z"))
	b := SnapshotName("p", "v", ts("2025-01-02T03:04:30Z"))
	if a != "p-v-202501020304" || b != "p-v-20250102030430" {
		t.Errorf("names %q and %q", a, b)
	}
}

func TestSnapshotName(t *testing.T) {
	slot := ts("2025-01-02T03:04:00Z")
	tests := []struct {
		name, policy, pvc, want string
	}{
		{"short names are readable", "nightly", "data-db-0", "nightly-data-db-0-202501020304"},
		{"long names are hashed and bounded", strings.Repeat("p", 40), strings.Repeat("v", 40), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := SnapshotName(tt.policy, tt.pvc, slot)
			if tt.want != "" && got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if len(got) > 63 || !strings.HasSuffix(got, "-202501020304") {
				t.Errorf("name %q: want ≤63 characters ending in the slot", got)
			}
			if again := SnapshotName(tt.policy, tt.pvc, slot); again != got {
				t.Errorf("not deterministic: %q then %q", got, again)
			}
			if other := SnapshotName(tt.policy, tt.pvc+"x", slot); other == got {
				t.Errorf("different PVCs share the name %q", got)
			}
		})
	}
}
