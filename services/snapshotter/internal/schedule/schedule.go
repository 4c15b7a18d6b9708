package schedule

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// MaxMissed bounds the missed slots Due reports; older ones are dropped.
const MaxMissed = 500

var parser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Schedule is a parsed cron expression in a time zone.
type Schedule struct {
	expr  string
	loc   *time.Location
	sched cron.Schedule
}

// Parse parses a standard 5-field cron expression or a descriptor
// (@hourly, @daily, @every 1h…) in the IANA time zone tz ("" = UTC).
// CRON_TZ= and TZ= prefixes are rejected: the zone is a separate field.
func Parse(expr, tz string) (Schedule, error) {
	if strings.HasPrefix(expr, "TZ=") || strings.HasPrefix(expr, "CRON_TZ=") {
		return Schedule{}, fmt.Errorf("schedule %q: set the time zone in timeZone, not in the expression", expr)
	}
	loc, err := Location(tz)
	if err != nil {
		return Schedule{}, err
	}
	s, err := parser.Parse(expr)
	if err != nil {
		return Schedule{}, fmt.Errorf("schedule %q: %w", expr, err)
	}
	if neverFires(s, loc) {
		return Schedule{}, fmt.Errorf("schedule %q: never fires (no such day, such as February 30)", expr)
	}
	return Schedule{expr: expr, loc: loc, sched: s}, nil
}

// neverFires reports whether s has no slot in the eight years after a
// fixed day: the widest gap of a schedule that fires at all is February
// 29 (1896 to 1904). robfig/cron accepts "0 0 30 2 *", whose Next is the
// zero time, which no slot is after: Due would loop for ever.
func neverFires(s cron.Schedule, loc *time.Location) bool {
	t := time.Date(2001, 1, 1, 0, 0, 0, 0, loc)
	for range 2 { // Next searches five years at a time
		if t = s.Next(t); !t.IsZero() {
			return false
		}
		t = time.Date(2006, 1, 1, 0, 0, 0, 0, loc)
	}
	return true
}

// Location loads the IANA time zone tz; "" is UTC. Names time.LoadLocation
// takes but that are no zone name ("Local", a path) are refused.
func Location(tz string) (*time.Location, error) {
	switch {
	case tz == "":
		return time.UTC, nil
	case tz == "Local" || strings.HasPrefix(tz, "/") || strings.Contains(tz, ".."):
		return nil, fmt.Errorf("time zone %q: not an IANA time zone name", tz)
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, fmt.Errorf("time zone %q: %w", tz, err)
	}
	return loc, nil
}

// Location is the schedule's time zone.
func (s Schedule) Location() *time.Location { return s.loc }

// Next returns the first slot strictly after t.
func (s Schedule) Next(t time.Time) time.Time {
	return s.sched.Next(t.In(s.loc))
}

// Run is what to do at now.
type Run struct {
	// Slot is the slot to run now; zero when nothing is due.
	Slot time.Time
	// Missed are the slots after last and before Slot that never ran,
	// oldest first, at most MaxMissed (the newest ones).
	Missed []time.Time
	// MissedTotal counts every missed slot, also those not listed.
	MissedTotal int
	// Next is the first slot after now.
	Next time.Time
}

// Due says what should run at now, when the last slot that ran is last (or,
// for a policy that never ran, when it was created). Only the newest due slot
// runs: after downtime one catch-up run replaces the missed ones.
func (s Schedule) Due(last, now time.Time) Run {
	var r Run
	// A zero Next is no slot (a February 29 schedule seen from more than
	// five years before its next leap day): it ends the loop.
	for t := s.Next(last); !t.IsZero() && !t.After(now); t = s.Next(t) {
		if !r.Slot.IsZero() {
			r.MissedTotal++
			r.Missed = append(r.Missed, r.Slot)
			if len(r.Missed) > MaxMissed {
				r.Missed = r.Missed[1:]
			}
		}
		r.Slot = t
	}
	r.Next = s.Next(now)
	if !r.Slot.IsZero() {
		r.Slot = r.Slot.UTC()
	}
	for i := range r.Missed {
		r.Missed[i] = r.Missed[i].UTC()
	}
	r.Next = r.Next.UTC()
	return r
}

// SnapshotName is the deterministic name of the snapshot of pvc taken by
// policy for slot: <policy>-<pvc>-<yyyymmddhhmm UTC> (with seconds appended
// when the slot is not on a minute). Names longer than a
// DNS label allows are shortened with a hash, so they stay unique.
func SnapshotName(policy, pvc string, slot time.Time) string {
	suffix := slot.UTC().Format("200601021504")
	if slot.Second() != 0 {
		suffix = slot.UTC().Format("20060102150405") // sub-minute schedules (@every 30s)
	}
	name := policy + "-" + pvc + "-" + suffix
	if len(name) <= 63 {
		return name
	}
	sum := sha256.Sum256([]byte(policy + "/" + pvc))
	h := hex.EncodeToString(sum[:])[:10]
	prefix := strings.TrimRight((policy + "-" + pvc)[:63-len(suffix)-len(h)-2], "-.")
	return prefix + "-" + h + "-" + suffix
}

// LabelValue shortens v to a valid label value (63 characters) with a hash
// when it is longer.
func LabelValue(v string) string {
	if len(v) <= 63 {
		return v
	}
	sum := sha256.Sum256([]byte(v))
	return strings.TrimRight(v[:52], "-_.") + "-" + hex.EncodeToString(sum[:])[:10]
}
