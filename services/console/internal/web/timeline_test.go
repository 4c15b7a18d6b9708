package web

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stateguard/stateguard/services/console/internal/correlator"
)

func snap(name, pvc, class string, at time.Time, versions ...string) correlator.Snapshot {
	s := correlator.Snapshot{Name: name, PVC: pvc, Class: class, Time: at, Ready: true}
	for _, v := range versions {
		s.Versions = append(s.Versions, struct {
			Version string `json:"version"`
			Verdict string `json:"verdict"`
		}{v, ""})
	}
	return s
}

func TestBuildTimeline(t *testing.T) {
	t0 := now.Add(-48 * time.Hour)
	vulnerableUntil := t0.Add(30 * time.Hour)
	p := correlator.Posture{Namespace: "shop", App: "db", Running: []string{"v2"},
		Versions: []correlator.Version{
			{Version: "v1", Verdict: correlator.Clean, Uploads: []correlator.Upload{{UploadID: "u1", ReceivedAt: t0.Add(time.Minute)}}},
			{Version: "v2", Verdict: correlator.Vulnerable, Uploads: []correlator.Upload{{UploadID: "u2", ReceivedAt: t0.Add(25 * time.Hour), Vulnerable: true}}},
		},
		Snapshots: []correlator.Snapshot{
			snap("db-2", "data", correlator.Tainted, t0.Add(24*time.Hour), "v2"),
			snap("db-1", "data", correlator.Clean, t0, "v1"),
			snap("logs-1", "logs", correlator.Unknown, t0.Add(time.Hour), "v9"),
		},
		Pinned: map[string]correlator.Pin{"db-1": {PVC: "data", Reason: "restore point"}},
		Incidents: []correlator.Incident{{ID: "inc-1", Open: true, StartTime: t0.Add(20 * time.Hour),
			// The lineage is exact for data: v1 wrote until v2 started.
			Lineage: []correlator.Span{
				{PVC: "data", Version: "v1", Verdict: correlator.Clean, From: t0.Add(-time.Hour), To: &vulnerableUntil},
				{PVC: "data", Version: "v2", Verdict: correlator.Vulnerable, From: vulnerableUntil},
			}}},
	}
	tl := BuildTimeline(p, now)

	type lane struct {
		Label string
		Bars  []string
		Marks []string
	}
	var got []lane
	for _, l := range tl.Lanes {
		gl := lane{Label: l.Label}
		for _, b := range l.Bars {
			gl.Bars = append(gl.Bars, b.Class)
		}
		for _, m := range l.Marks {
			s := m.Class
			if m.Pinned {
				s += " pinned"
			}
			if m.Href != "" {
				s += " → " + m.Href
			}
			gl.Marks = append(gl.Marks, s)
		}
		got = append(got, gl)
	}
	want := []lane{
		{Label: "PVC data", Bars: []string{"clean", "vulnerable"}, Marks: []string{"clean pinned → /snapshots/shop/db-1", "tainted → /snapshots/shop/db-2"}},
		{Label: "PVC logs", Bars: []string{"unknown"}, Marks: []string{"unknown → /snapshots/shop/logs-1"}},
		{Label: "SARIF uploads", Marks: []string{"clean", "vulnerable"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("lanes (-want +got):\n%s", diff)
	}
	// The running version's bar and the open incident reach now (the
	// right edge); the lineage's v1 bar starts before the first snapshot.
	right := tlWidth - tlRight
	data := tl.Lanes[0]
	if v2 := data.Bars[1]; v2.X+v2.W != right {
		t.Errorf("running v2 ends at %d, want the right edge %d", v2.X+v2.W, right)
	}
	if v1 := data.Bars[0]; v1.X >= data.Marks[0].X {
		t.Errorf("v1 starts at %d, not before its first snapshot at %d (the lineage began earlier)", v1.X, data.Marks[0].X)
	}
	if len(tl.Incidents) != 1 || tl.Incidents[0].X+tl.Incidents[0].W != right || tl.Incidents[0].Href != "/incidents/inc-1" {
		t.Errorf("incident spans %+v: want one, open to the right edge, linking to it", tl.Incidents)
	}
	for i := 1; i < len(tl.Ticks); i++ {
		if tl.Ticks[i].X <= tl.Ticks[i-1].X {
			t.Errorf("ticks not increasing: %+v", tl.Ticks)
		}
	}
}
