package retention

import (
	"slices"
	"strings"
	"time"
)

// State is the life-cycle state of a snapshot.
type State uint8

// The states of a snapshot.
const (
	// Ready snapshots are ready to use; only they count for the rules.
	Ready State = iota
	// Pending snapshots are still being taken; they are always kept.
	Pending
	// Failed snapshots carry an error; they are deleted unless pinned.
	Failed
)

// Snapshot is what retention needs to know about one snapshot.
type Snapshot struct {
	Name   string
	Time   time.Time
	State  State
	Pinned bool
}

// Policy is a retention policy. Zero counts disable a rule; a policy with no
// rule and no MaxAge keeps everything.
type Policy struct {
	KeepLast int
	Hourly   int
	Daily    int
	Weekly   int
	Monthly  int
	Yearly   int
	// MaxAge deletes snapshots older than now-MaxAge; 0 disables it.
	MaxAge time.Duration
	// Location is the time zone of the buckets; nil means UTC.
	Location *time.Location
}

func (p Policy) empty() bool {
	return p.KeepLast == 0 && p.Hourly == 0 && p.Daily == 0 && p.Weekly == 0 &&
		p.Monthly == 0 && p.Yearly == 0 && p.MaxAge == 0
}

// Reason is a set of reasons for a decision.
type Reason uint16

// The reasons. Keep reasons first, then delete reasons.
const (
	KeepPinned Reason = 1 << iota
	KeepNewestReady
	KeepLast
	KeepHourly
	KeepDaily
	KeepWeekly
	KeepMonthly
	KeepYearly
	KeepPending
	KeepNoPolicy
	DeleteUnmatched
	DeleteMaxAge
	DeleteFailed
)

var reasonNames = [...]string{
	"pinned", "newest ready", "last", "hourly", "daily", "weekly", "monthly", "yearly",
	"pending", "no retention policy", "matched no keep rule", "older than maxAge", "failed",
}

// String lists the reasons, comma-separated.
func (r Reason) String() string {
	var b strings.Builder
	for i, n := range reasonNames {
		if r&(1<<i) != 0 {
			if b.Len() > 0 {
				b.WriteString(", ")
			}
			b.WriteString(n)
		}
	}
	return b.String()
}

// Decision is the fate of one snapshot.
type Decision struct {
	Snapshot Snapshot
	Keep     bool
	// Why says why it is kept or deleted.
	Why Reason
}

// Plan is the result of Apply: every snapshot once, newest first.
type Plan struct {
	Decisions []Decision
}

// Kept returns the kept decisions, newest first.
func (p Plan) Kept() []Decision { return p.filter(true) }

// Deleted returns the deletions, newest first.
func (p Plan) Deleted() []Decision { return p.filter(false) }

func (p Plan) filter(keep bool) []Decision {
	var out []Decision
	for _, d := range p.Decisions {
		if d.Keep == keep {
			out = append(out, d)
		}
	}
	return out
}

type bucketRule struct {
	count  int
	last   int
	reason Reason
	bucket func(t time.Time) int
}

func hourBucket(t time.Time) int {
	y, m, d := t.Date()
	return y*1000000 + int(m)*10000 + d*100 + t.Hour()
}

func dayBucket(t time.Time) int {
	y, m, d := t.Date()
	return y*10000 + int(m)*100 + d
}

func weekBucket(t time.Time) int {
	y, w := t.ISOWeek()
	return y*100 + w
}

func monthBucket(t time.Time) int {
	y, m, _ := t.Date()
	return y*100 + int(m)
}

func yearBucket(t time.Time) int { return t.Year() }

// Apply computes the plan for the snapshots of one PVC. The input slice is
// not modified.
func Apply(p Policy, snaps []Snapshot, now time.Time) Plan {
	loc := p.Location
	if loc == nil {
		loc = time.UTC
	}
	ds := make([]Decision, len(snaps))
	for i, s := range snaps {
		ds[i] = Decision{Snapshot: s}
	}
	// Newest first; names break ties so the plan is deterministic.
	slices.SortFunc(ds, func(a, b Decision) int {
		if c := b.Snapshot.Time.Compare(a.Snapshot.Time); c != 0 {
			return c
		}
		return strings.Compare(a.Snapshot.Name, b.Snapshot.Name)
	})
	rules := [...]bucketRule{
		{count: p.Hourly, last: -1, reason: KeepHourly, bucket: hourBucket},
		{count: p.Daily, last: -1, reason: KeepDaily, bucket: dayBucket},
		{count: p.Weekly, last: -1, reason: KeepWeekly, bucket: weekBucket},
		{count: p.Monthly, last: -1, reason: KeepMonthly, bucket: monthBucket},
		{count: p.Yearly, last: -1, reason: KeepYearly, bucket: yearBucket},
	}
	keepLast := p.KeepLast
	empty := p.empty()
	var cutoff time.Time
	if p.MaxAge > 0 {
		cutoff = now.Add(-p.MaxAge)
	}
	newestReady := true
	for i := range ds {
		d := &ds[i]
		s := d.Snapshot
		if s.Pinned {
			d.Why |= KeepPinned
		}
		switch s.State {
		case Pending:
			d.Why |= KeepPending
		case Failed:
			d.Why |= DeleteFailed
		case Ready:
			if newestReady {
				d.Why |= KeepNewestReady
				newestReady = false
			}
			if empty {
				d.Why |= KeepNoPolicy
				break
			}
			if keepLast > 0 {
				d.Why |= KeepLast
				keepLast--
			}
			lt := s.Time.In(loc)
			for r := range rules {
				rule := &rules[r]
				if rule.count == 0 {
					continue
				}
				if b := rule.bucket(lt); b != rule.last {
					rule.last = b
					rule.count--
					d.Why |= rule.reason
				}
			}
			if d.Why&(KeepLast|KeepHourly|KeepDaily|KeepWeekly|KeepMonthly|KeepYearly) == 0 {
				d.Why |= DeleteUnmatched
			}
			if !cutoff.IsZero() && s.Time.Before(cutoff) {
				d.Why |= DeleteMaxAge
				d.Why &^= KeepLast | KeepHourly | KeepDaily | KeepWeekly | KeepMonthly | KeepYearly
				d.Why &^= DeleteUnmatched
			}
		}
		// The guards win over every delete reason.
		d.Keep = d.Why&(KeepPinned|KeepNewestReady|KeepPending|KeepNoPolicy) != 0 ||
			d.Why&(DeleteUnmatched|DeleteMaxAge|DeleteFailed) == 0
		if d.Keep {
			d.Why &^= DeleteUnmatched | DeleteMaxAge | DeleteFailed
		}
	}
	return Plan{Decisions: ds}
}
