package web

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/stateguard/stateguard/services/console/internal/correlator"
)

// Timeline is an application's history drawn as SVG by the server: one
// lane per PVC with the version intervals that wrote to it and its
// snapshots, a lane of SARIF uploads, a lane of certificates with their
// rotations, and the incidents as spans over every lane.
type Timeline struct {
	Width, Height int
	From, To      time.Time
	Lanes         []Lane
	Incidents     []Span
	Ticks         []Tick
}

// Lane is one row of the timeline.
type Lane struct {
	Label string
	Y     int
	Bars  []Bar
	Marks []Mark
}

// Bar is a version's interval on a PVC.
type Bar struct {
	X, W  int
	Class string // vulnerable, clean, unknown
	Title string
}

// Mark is a point on a lane: a snapshot, an upload, a rotation.
type Mark struct {
	X      int
	Class  string
	Pinned bool
	Href   string
	Title  string
}

// Span is an incident over the lanes.
type Span struct {
	X, W  int
	Open  bool
	Href  string
	Title string
}

// Tick is a date on the axis.
type Tick struct {
	X      int
	Label  string
	Anchor string // text-anchor: the first and last labels stay inside
}

// Timeline geometry.
const (
	tlWidth  = 960
	tlLeft   = 170
	tlRight  = 20
	tlTop    = 30
	tlLane   = 34
	tlBottom = 30
)

// BuildTimeline lays the posture's facts out: versions per PVC from the
// incidents' lineage where one covers the PVC (exact, from the workload
// observations) and otherwise from the snapshots that show each version
// (first to last); snapshots coloured by class with their pins, each
// linking to its why; uploads coloured by verdict; certificate rotations;
// incident spans from start to close (or now).
func BuildTimeline(p correlator.Posture, now time.Time) Timeline {
	ax := newAxis(p, now)
	tl := Timeline{Width: tlWidth, From: ax.from, To: ax.to}
	y := tlTop
	tl.Lanes, y = pvcLanes(p, ax, y)
	tl.Lanes = append(tl.Lanes, uploadLane(p, ax, y))
	y += tlLane
	if len(p.Certificates) > 0 {
		tl.Lanes = append(tl.Lanes, certificateLane(p, ax, y))
		y += tlLane
	}
	tl.Height = y + tlBottom
	tl.Incidents = incidentSpans(p, ax)
	tl.Ticks = ax.ticks()
	return tl
}

// axis maps a time to an x coordinate over the posture's time range.
type axis struct{ from, to time.Time }

// newAxis spans from the earliest fact of the posture to now, at least an
// hour, with a margin so the first mark is not on the edge.
func newAxis(p correlator.Posture, now time.Time) axis {
	from := now
	see := func(t time.Time) {
		if !t.IsZero() && t.Before(from) {
			from = t
		}
	}
	for _, s := range p.Snapshots {
		see(s.Time)
	}
	for _, v := range p.Versions {
		for _, u := range v.Uploads {
			see(u.ReceivedAt)
		}
	}
	for _, inc := range p.Incidents {
		see(inc.StartTime)
		for _, l := range inc.Lineage {
			see(l.From)
		}
	}
	if now.Sub(from) < time.Hour {
		from = now.Add(-time.Hour)
	}
	from = from.Add(-now.Sub(from) / 40)
	return axis{from: from, to: now}
}

func (a axis) x(t time.Time) int {
	return tlLeft + int(float64(tlWidth-tlLeft-tlRight)*float64(t.Sub(a.from))/float64(a.to.Sub(a.from)))
}

func (a axis) ticks() []Tick {
	var ts []Tick
	for i := 0; i <= 4; i++ {
		t := a.from.Add(a.to.Sub(a.from) * time.Duration(i) / 4)
		anchor := "middle"
		switch i {
		case 0:
			anchor = "start"
		case 4:
			anchor = "end"
		}
		ts = append(ts, Tick{X: a.x(t), Label: t.UTC().Format("01-02 15:04"), Anchor: anchor})
	}
	return ts
}

// versionKey names a version's interval on one PVC.
type versionKey struct{ pvc, version string }

// interval is when a version wrote to a PVC; open while it still runs.
type interval struct {
	from, to time.Time
	verdict  string
	open     bool
}

// lineageIntervals are the exact intervals of the incidents' lineages
// (from the workload observations), and the PVCs they cover.
func lineageIntervals(p correlator.Posture) (map[versionKey]*interval, map[string]bool) {
	ivs := map[versionKey]*interval{}
	exact := map[string]bool{}
	for _, inc := range p.Incidents {
		for _, l := range inc.Lineage {
			exact[l.PVC] = true
			k := versionKey{l.PVC, l.Version}
			iv := ivs[k]
			if iv == nil {
				iv = &interval{from: l.From, to: l.From, verdict: l.Verdict}
				ivs[k] = iv
			}
			if l.From.Before(iv.from) {
				iv.from = l.From
			}
			if l.To == nil {
				iv.open = true
			} else if l.To.After(iv.to) {
				iv.to = *l.To
			}
		}
	}
	return ivs, exact
}

// sampledIntervals adds, for a PVC no lineage covers, each version from the
// first to the last snapshot that shows it; open when the newest snapshot
// shows a version that still runs.
func sampledIntervals(ivs map[versionKey]*interval, pvc string, snaps []correlator.Snapshot, running []string) {
	last := snaps[len(snaps)-1].Time
	for _, s := range snaps {
		for _, v := range s.Versions {
			k := versionKey{pvc, v.Version}
			iv := ivs[k]
			if iv == nil {
				iv = &interval{from: s.Time, to: s.Time, verdict: v.Verdict}
				ivs[k] = iv
			}
			iv.to = s.Time
			if s.Time.Equal(last) && slices.Contains(running, v.Version) {
				iv.open = true
			}
		}
	}
}

// pvcLanes draws one lane per PVC: its version bars and its snapshots.
func pvcLanes(p correlator.Posture, ax axis, y int) ([]Lane, int) {
	ivs, exact := lineageIntervals(p)
	pvcs := map[string][]correlator.Snapshot{}
	for _, s := range p.Snapshots {
		pvcs[s.PVC] = append(pvcs[s.PVC], s)
	}
	for pvc, snaps := range pvcs {
		slices.SortFunc(snaps, func(a, b correlator.Snapshot) int { return a.Time.Compare(b.Time) })
		if !exact[pvc] {
			sampledIntervals(ivs, pvc, snaps, p.Running)
		}
	}
	for k := range ivs {
		if _, ok := pvcs[k.pvc]; !ok {
			pvcs[k.pvc] = nil
		}
	}
	verdict := map[string]string{}
	for _, v := range p.Versions {
		verdict[v.Version] = v.Verdict
	}
	order := slices.SortedFunc(maps.Keys(ivs), func(a, b versionKey) int { return ivs[a].from.Compare(ivs[b].from) })
	var lanes []Lane
	for _, pvc := range slices.Sorted(maps.Keys(pvcs)) {
		lane := Lane{Label: "PVC " + pvc, Y: y}
		for _, k := range order {
			if k.pvc == pvc {
				lane.Bars = append(lane.Bars, versionBar(k, ivs[k], verdict[k.version], ax))
			}
		}
		for _, s := range pvcs[pvc] {
			lane.Marks = append(lane.Marks, snapshotMark(p, s, ax))
		}
		lanes = append(lanes, lane)
		y += tlLane
	}
	return lanes, y
}

// versionBar draws a version's interval, coloured by its current verdict
// (or the one the interval recorded).
func versionBar(k versionKey, iv *interval, current string, ax axis) Bar {
	end := iv.to
	if iv.open {
		end = ax.to
	}
	v := cmp.Or(current, iv.verdict, correlator.Unknown)
	x0, x1 := ax.x(iv.from), ax.x(end)
	return Bar{X: x0, W: max(x1-x0, 3), Class: v,
		Title: fmt.Sprintf("%s %s on %s from %s to %s", short(k.version), v, k.pvc, stamp(iv.from), stampOpen(end, iv.open))}
}

// snapshotMark draws a snapshot coloured by its class, with its pin,
// linking to its why.
func snapshotMark(p correlator.Posture, s correlator.Snapshot, ax axis) Mark {
	pin, pinned := p.Pinned[s.Name]
	t := fmt.Sprintf("snapshot %s (%s) at %s", s.Name, s.Class, stamp(s.Time))
	if pinned {
		t += ", pinned: " + pin.Reason
	}
	return Mark{X: ax.x(s.Time), Class: s.Class, Pinned: pinned, Href: "/snapshots/" + p.Namespace + "/" + s.Name, Title: t}
}

// uploadLane draws the SARIF uploads, coloured by their verdict.
func uploadLane(p correlator.Posture, ax axis, y int) Lane {
	uploads := Lane{Label: "SARIF uploads", Y: y}
	for _, v := range p.Versions {
		for _, u := range v.Uploads {
			c := correlator.Clean
			if u.Vulnerable {
				c = correlator.Vulnerable
			}
			uploads.Marks = append(uploads.Marks, Mark{X: ax.x(u.ReceivedAt), Class: c,
				Title: fmt.Sprintf("upload %s for %s: %s, %d critical, %d high (%s)", u.UploadID, short(v.Version), c, u.Counts.Critical, u.Counts.High, stamp(u.ReceivedAt))})
		}
	}
	return uploads
}

// certificateLane draws the certificates' observations and rotations.
func certificateLane(p correlator.Posture, ax axis, y int) Lane {
	certs := Lane{Label: "certificates", Y: y}
	for _, c := range p.Certificates {
		cls, what := "cert", "observed"
		if c.Rotated {
			cls, what = "rotated", "rotated"
		}
		certs.Marks = append(certs.Marks, Mark{X: ax.x(c.ObservedAt), Class: cls,
			Title: fmt.Sprintf("%s %s at %s, expires %s", c.Secret, what, stamp(c.ObservedAt), stamp(c.NotAfter))})
	}
	return certs
}

// incidentSpans draws each incident from its start to its close (or now).
func incidentSpans(p correlator.Posture, ax axis) []Span {
	var spans []Span
	for _, inc := range p.Incidents {
		end := ax.to
		if !inc.Open && !inc.ClosedAt.IsZero() {
			end = inc.ClosedAt
		}
		x0 := ax.x(inc.StartTime)
		spans = append(spans, Span{X: x0, W: max(ax.x(end)-x0, 3), Open: inc.Open, Href: "/incidents/" + inc.ID,
			Title: fmt.Sprintf("incident %s from %s to %s", inc.ID, stamp(inc.StartTime), stampOpen(end, inc.Open))})
	}
	return spans
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") }

func stampOpen(t time.Time, open bool) string {
	if open {
		return "now"
	}
	return stamp(t)
}
