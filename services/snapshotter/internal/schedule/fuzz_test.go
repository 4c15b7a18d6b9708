package schedule

import (
	"testing"
	"time"
)

// FuzzSchedule feeds arbitrary cron expressions and time zones, as a
// SnapshotPolicy's spec.schedule and spec.timeZone carry them, to Parse and
// checks what an accepted schedule promises the controller: it fires
// (Next is a slot, strictly after its argument), and Due ends and says
// something consistent: the slot in (last, now], missed slots ascending
// before it and bounded, the next slot after now. "0 0 30 2 *" (February
// 30) was accepted and made Due loop for ever.
func FuzzSchedule(f *testing.F) {
	for _, s := range []struct {
		expr, tz string
	}{
		{"0 * * * *", ""}, {"*/15 2-4 * * 1-5", "Europe/Berlin"}, {"@daily", "America/New_York"},
		{"@every 90s", ""}, {"@every 0s", ""}, {"0 0 29 2 *", ""}, {"0 0 30 2 *", ""}, {"0 0 31 4,6,9,11 *", ""},
		{"30 2 * * *", "Europe/London"}, {"0 0 1 1 *", "Pacific/Kiritimati"}, {"59 23 31 12 7", ""},
		{"CRON_TZ=UTC 0 * * * *", ""}, {"0 0 * * * *", ""}, {"@yearly", "Local"}, {"0 * * * *", "../etc/passwd"},
	} {
		f.Add(s.expr, s.tz, int64(1735689600), int64(3*3600))
	}
	f.Fuzz(func(t *testing.T, expr, tz string, lastUnix, span int64) {
		s, err := Parse(expr, tz)
		if err != nil {
			return
		}
		// last within years 1970..2200, now at most six hours later, so
		// the slots Due walks stay bounded for an every-second schedule.
		last := time.Unix(lastUnix%(230*365*86400), 0).UTC()
		if last.Before(time.Unix(0, 0)) {
			last = last.AddDate(230, 0, 0)
		}
		now := last.Add(time.Duration(span%(6*3600)) * time.Second)
		if now.Before(last) {
			now = last.Add(last.Sub(now))
		}
		if n := s.Next(last); n.IsZero() && last.Year() < 2190 {
			t.Fatalf("%q accepted but Next(%s) is no slot", expr, last)
		} else if !n.IsZero() && !n.After(last) {
			t.Fatalf("%q: Next(%s) = %s, not after it", expr, last, n)
		}
		r := s.Due(last, now)
		if !r.Slot.IsZero() && (!r.Slot.After(last) || r.Slot.After(now)) {
			t.Fatalf("%q: slot %s outside (%s, %s]", expr, r.Slot, last, now)
		}
		if len(r.Missed) > MaxMissed || r.MissedTotal < len(r.Missed) || (r.Slot.IsZero() && r.MissedTotal > 0) {
			t.Fatalf("%q: %d missed listed of %d, slot %s", expr, len(r.Missed), r.MissedTotal, r.Slot)
		}
		for i, m := range r.Missed {
			if !m.After(last) || !m.Before(r.Slot) || (i > 0 && !m.After(r.Missed[i-1])) {
				t.Fatalf("%q: missed slot %d %s out of order or outside (%s, %s)", expr, i, m, last, r.Slot)
			}
		}
		if !r.Next.IsZero() && !r.Next.After(now) {
			t.Fatalf("%q: next %s not after now %s", expr, r.Next, now)
		}
	})
}
