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
	from, to := now, now
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
	if to.Sub(from) < time.Hour {
		from = to.Add(-time.Hour)
	}
	span := to.Sub(from)
	from = from.Add(-span / 40) // a margin so the first mark is not on the edge
	span = to.Sub(from)
	x := func(t time.Time) int {
		return tlLeft + int(float64(tlWidth-tlLeft-tlRight)*float64(t.Sub(from))/float64(span))
	}
	tl := Timeline{Width: tlWidth, From: from, To: to}

	// Versions per PVC.
	type key struct{ pvc, version string }
	type interval struct {
		from, to time.Time
		verdict  string
		open     bool
	}
	ivs := map[key]*interval{}
	verdict := map[string]string{}
	for _, v := range p.Versions {
		verdict[v.Version] = v.Verdict
	}
	exact := map[string]bool{}
	for _, inc := range p.Incidents {
		for _, l := range inc.Lineage {
			exact[l.PVC] = true
			k := key{l.PVC, l.Version}
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
	pvcs := map[string][]correlator.Snapshot{}
	for _, s := range p.Snapshots {
		pvcs[s.PVC] = append(pvcs[s.PVC], s)
	}
	for pvc, snaps := range pvcs {
		slices.SortFunc(snaps, func(a, b correlator.Snapshot) int { return a.Time.Compare(b.Time) })
		if exact[pvc] {
			continue
		}
		last := snaps[len(snaps)-1].Time
		for _, s := range snaps {
			for _, v := range s.Versions {
				k := key{pvc, v.Version}
				iv := ivs[k]
				if iv == nil {
					iv = &interval{from: s.Time, to: s.Time, verdict: v.Verdict}
					ivs[k] = iv
				}
				iv.to = s.Time
				if s.Time.Equal(last) && slices.Contains(p.Running, v.Version) {
					iv.open = true
				}
			}
		}
	}
	for k := range ivs {
		if _, ok := pvcs[k.pvc]; !ok {
			pvcs[k.pvc] = nil
		}
	}
	y := tlTop
	for _, pvc := range slices.Sorted(maps.Keys(pvcs)) {
		lane := Lane{Label: "PVC " + pvc, Y: y}
		for _, k := range slices.SortedFunc(maps.Keys(ivs), func(a, b key) int {
			return ivs[a].from.Compare(ivs[b].from)
		}) {
			if k.pvc != pvc {
				continue
			}
			iv := ivs[k]
			end := iv.to
			if iv.open {
				end = to
			}
			v := verdict[k.version]
			if v == "" {
				v = cmp.Or(iv.verdict, correlator.Unknown)
			}
			x0, x1 := x(iv.from), x(end)
			lane.Bars = append(lane.Bars, Bar{X: x0, W: max(x1-x0, 3), Class: v,
				Title: fmt.Sprintf("%s %s on %s from %s to %s", short(k.version), v, pvc, stamp(iv.from), stampOpen(end, iv.open))})
		}
		for _, s := range pvcs[pvc] {
			_, pinned := p.Pinned[s.Name]
			t := fmt.Sprintf("snapshot %s (%s) at %s", s.Name, s.Class, stamp(s.Time))
			if pinned {
				t += ", pinned: " + p.Pinned[s.Name].Reason
			}
			lane.Marks = append(lane.Marks, Mark{X: x(s.Time), Class: s.Class, Pinned: pinned,
				Href: "/snapshots/" + p.Namespace + "/" + s.Name, Title: t})
		}
		tl.Lanes = append(tl.Lanes, lane)
		y += tlLane
	}
	uploads := Lane{Label: "SARIF uploads", Y: y}
	for _, v := range p.Versions {
		for _, u := range v.Uploads {
			c := correlator.Clean
			if u.Vulnerable {
				c = correlator.Vulnerable
			}
			uploads.Marks = append(uploads.Marks, Mark{X: x(u.ReceivedAt), Class: c,
				Title: fmt.Sprintf("upload %s for %s: %s, %d critical, %d high (%s)", u.UploadID, short(v.Version), c, u.Counts.Critical, u.Counts.High, stamp(u.ReceivedAt))})
		}
	}
	tl.Lanes = append(tl.Lanes, uploads)
	y += tlLane
	if len(p.Certificates) > 0 {
		certs := Lane{Label: "certificates", Y: y}
		for _, c := range p.Certificates {
			cls := "cert"
			what := "observed"
			if c.Rotated {
				cls, what = "rotated", "rotated"
			}
			certs.Marks = append(certs.Marks, Mark{X: x(c.ObservedAt), Class: cls,
				Title: fmt.Sprintf("%s %s at %s, expires %s", c.Secret, what, stamp(c.ObservedAt), stamp(c.NotAfter))})
		}
		tl.Lanes = append(tl.Lanes, certs)
		y += tlLane
	}
	tl.Height = y + tlBottom
	for _, inc := range p.Incidents {
		end := to
		if !inc.Open && !inc.ClosedAt.IsZero() {
			end = inc.ClosedAt
		}
		x0 := x(inc.StartTime)
		tl.Incidents = append(tl.Incidents, Span{X: x0, W: max(x(end)-x0, 3), Open: inc.Open, Href: "/incidents/" + inc.ID,
			Title: fmt.Sprintf("incident %s from %s to %s", inc.ID, stamp(inc.StartTime), stampOpen(end, inc.Open))})
	}
	for i := 0; i <= 4; i++ {
		t := from.Add(span * time.Duration(i) / 4)
		anchor := "middle"
		switch i {
		case 0:
			anchor = "start"
		case 4:
			anchor = "end"
		}
		tl.Ticks = append(tl.Ticks, Tick{X: x(t), Label: t.UTC().Format("01-02 15:04"), Anchor: anchor})
	}
	return tl
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") }

func stampOpen(t time.Time, open bool) string {
	if open {
		return "now"
	}
	return stamp(t)
}
