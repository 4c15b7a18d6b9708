package model

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/stateguard/stateguard/pkg/events"
)

// The lineage of a volume's data is every version that wrote to it since
// the lineage began: the first observation of the PVC (what ran before
// stateguard first saw it is not known), or the latest restore into it,
// which makes the data inherit the restored snapshot's lineage. What ran
// is learnt from samples: workload.observed events (every change of the
// pods mounting the PVC) and the workloads a snapshot.completed names.
// The rules below are pure functions of those facts.

// Span is one version that wrote to a volume, from the first sample that
// shows it to the first later sample that does not (To is nil while the
// newest sample still shows it).
type Span struct {
	PVC     string
	App     string
	Version string
	Label   string
	Commit  string
	From    time.Time
	To      *time.Time
	// Via is the snapshot a restore inherited the span from.
	Via     string
	Verdict string
	// Cause is the event that first showed the version.
	Cause string
}

// sample is what ran on a PVC from Time on: a completed snapshot's
// workloads (snap) or an observation's (snap nil).
type sample struct {
	time      time.Time
	eventID   string
	workloads []Workload
	snap      *Snapshot
}

// sampleOrder orders a PVC's samples by time, then event id.
func sampleOrder(a, b sample) int {
	if c := a.time.Compare(b.time); c != 0 {
		return c
	}
	return strings.Compare(a.eventID, b.eventID)
}

// spansOf turns a PVC's samples (sorted by time) into spans: a version
// writes from the first sample that shows it until the first later sample
// without it.
func spansOf(pvc string, samples []sample) []Span {
	sc := spanScratchPool.Get().(*spanScratch)
	defer sc.put()
	out, open := sc.spans[:0], sc.open[:0] // open: indexes in out
	for i, sm := range samples {
		// A sample that shows the same versions as the one before opens
		// and closes nothing (most do: the snapshots of a version).
		if i > 0 && sameVersions(samples[i-1].workloads, sm.workloads) {
			continue
		}
		// The spans no longer shown close, then the versions not open yet
		// open (two sets that do not meet: the order is free).
		kept := open[:0]
		for _, j := range open {
			if shows(sm.workloads, out[j].App, out[j].Version) {
				kept = append(kept, j)
			} else {
				t := sm.time
				out[j].To = &t
			}
		}
		open = kept
		for _, w := range sm.workloads {
			for _, v := range w.Versions {
				if !slices.ContainsFunc(open, func(j int) bool { return out[j].App == w.App && out[j].Version == v }) {
					open = append(open, len(out))
					out = append(out, Span{PVC: pvc, App: w.App, Version: v, Label: w.Label, Commit: w.Commit, From: sm.time, Cause: sm.eventID})
				}
			}
		}
	}
	sc.spans, sc.open = out, open
	return slices.Clone(out)
}

// shows reports whether ws show version v of app.
func shows(ws []Workload, app, v string) bool {
	for _, w := range ws {
		if w.App == app && slices.Contains(w.Versions, v) {
			return true
		}
	}
	return false
}

// spanScratch is spansOf's working memory, reused through spanScratchPool
// (spansOf runs for each PVC an event's applications read, per event: its
// growing arrays were a tenth of the bytes an event allocated).
type spanScratch struct {
	spans []Span
	open  []int
}

var spanScratchPool = sync.Pool{New: func() any { return new(spanScratch) }}

func (sc *spanScratch) put() {
	clear(sc.spans) // drop what the spans point to (those beyond were dropped before)
	sc.spans, sc.open = sc.spans[:0], sc.open[:0]
	spanScratchPool.Put(sc)
}

type appVersion struct{ app, version string }

func sampleAt(sm sample, t time.Time) int { return sm.time.Compare(t) }

// sameVersions reports whether two samples' workloads show the same apps
// and versions, in the same order (the same list, shared by the
// snapshots of a run, at once).
func sameVersions(a, b []Workload) bool {
	if len(a) != len(b) {
		return false
	}
	if len(a) == 0 || &a[0] == &b[0] {
		return true
	}
	for i := range a {
		if a[i].App != b[i].App || !slices.Equal(a[i].Versions, b[i].Versions) {
			return false
		}
	}
	return true
}

// classify is a snapshot's class from the spans of its lineage that
// started by its time: tainted when any version is vulnerable, clean when
// every one is clean (unknown counts as clean only with unknownIsClean),
// unknown otherwise, and unknown without any span.
func classify(spans []Span, at time.Time, unknownIsClean bool) string {
	anyVuln, allClean, any := false, true, false
	for _, sp := range spans {
		if sp.From.After(at) {
			continue
		}
		any = true
		switch sp.Verdict {
		case Vulnerable:
			anyVuln = true
		case Unknown:
			allClean = allClean && unknownIsClean
		}
	}
	switch {
	case anyVuln:
		return Tainted
	case any && allClean:
		return Clean
	}
	return Unknown
}

// chooseKnownGood picks, per PVC, the keep newest clean, ready snapshots
// of views (sorted oldest first).
func chooseKnownGood(views []SnapshotView, keep int) map[string][]string {
	out := map[string][]string{}
	for i := len(views) - 1; i >= 0; i-- {
		sv := views[i]
		if sv.Ready && sv.Class == Clean && len(out[sv.PVC]) < keep {
			out[sv.PVC] = append(out[sv.PVC], sv.Name)
		}
	}
	return out
}

// restorePointBefore is the newest clean, ready snapshot of pvc taken
// before t (views sorted oldest first).
func restorePointBefore(views []SnapshotView, pvc string, t time.Time) (SnapshotView, bool) {
	for i := len(views) - 1; i >= 0; i-- {
		sv := views[i]
		if sv.PVC == pvc && sv.Ready && sv.Class == Clean && sv.Time.Before(t) {
			return sv, true
		}
	}
	return SnapshotView{}, false
}

// epoch is a stretch of a PVC's lineage: from start (zero: its first
// sample) until the next restore into it.
type epoch struct {
	start   time.Time
	restore *Restore // what began it; nil for the first
	spans   []Span
}

// lineages computes the epochs of a namespace's PVCs from its facts, each
// PVC's when first asked for (an application's view needs its own PVCs and
// those restored from: building every PVC's samples made each event cost
// as much as the namespace's snapshots).
type lineages struct {
	st       *State
	verdict  func(app string, w Workload, version string) string
	byPVC    map[string][]*Snapshot
	restores map[string][]*Restore
	memo     map[string][]epoch
}

func newLineages(st *State, byPVC map[string][]*Snapshot, verdict func(app string, w Workload, version string) string) *lineages {
	lx := &lineages{st: st, verdict: verdict, byPVC: byPVC, restores: map[string][]*Restore{}, memo: map[string][]epoch{}}
	for _, r := range st.Restores {
		lx.restores[r.PVC] = append(lx.restores[r.PVC], r)
	}
	for _, list := range lx.restores {
		slices.SortFunc(list, func(a, b *Restore) int {
			if c := a.Time.Compare(b.Time); c != 0 {
				return c
			}
			return strings.Compare(a.ID, b.ID)
		})
	}
	return lx
}

// samples are what ran on pvc, sorted by time: its completed snapshots and
// its observations (samplesOf), in an array to give back with putSamples.
func (lx *lineages) samples(pvc string) *[]sample {
	return samplesOf(lx.byPVC[pvc], lx.st.observationsOn(pvc))
}

// samplesOf merges a PVC's completed snapshots and observations, sorted
// by time, then event id (sampleOrder), into an array of samplePool; the
// caller gives it back with putSamples once nothing reads it. Built per
// event for each PVC an event's applications read and again for prune,
// these arrays were a fifth of the bytes an event allocated.
func samplesOf(snaps []*Snapshot, observed []*Observation) *[]sample {
	p := samplePool.Get().(*[]sample)
	list := slices.Grow((*p)[:0], len(snaps)+len(observed))
	for _, s := range snaps {
		list = append(list, sample{time: s.Time, eventID: s.EventID, workloads: s.Workloads, snap: s})
	}
	for _, o := range observed {
		list = append(list, sample{time: o.Time, eventID: o.EventID, workloads: o.Workloads})
	}
	slices.SortFunc(list, sampleOrder)
	*p = list
	return p
}

var samplePool = sync.Pool{New: func() any { return new([]sample) }}

// putSamples gives an array of samplesOf back.
func putSamples(p *[]sample) {
	clear(*p) // drop what the samples point to
	*p = (*p)[:0]
	samplePool.Put(p)
}

// epochs of pvc, oldest first. A restore's epoch starts with the spans of
// the restored snapshot's lineage up to the snapshot's time (marked Via),
// then what ran on the PVC since the restore.
func (lx *lineages) epochs(pvc string) []epoch {
	return lx.epochsDepth(pvc, 0)
}

func (lx *lineages) epochsDepth(pvc string, depth int) []epoch {
	if eps, ok := lx.memo[pvc]; ok {
		return eps
	}
	lx.memo[pvc] = nil // a cycle of restores ends here
	buf := lx.samples(pvc)
	defer putSamples(buf)
	samples := *buf
	bounds := []epoch{{}}
	for _, r := range lx.restores[pvc] {
		bounds = append(bounds, epoch{start: r.Time, restore: r})
	}
	for i := range bounds {
		// The samples from the epoch's start until the next one's
		// (samples are sorted by time), after what ran at its restore.
		from, _ := slices.BinarySearchFunc(samples, bounds[i].start, sampleAt)
		to := len(samples)
		if i+1 < len(bounds) {
			to, _ = slices.BinarySearchFunc(samples, bounds[i+1].start, sampleAt)
		}
		own := samples[from:max(from, to)]
		if r := bounds[i].restore; r != nil {
			if running := runningAtRestore(samples, r); running != nil {
				own = append(running, own...) // a new array: samples stays as it is
			}
		}
		spans := spansOf(pvc, own)
		// A restore into the same PVC inherits from its earlier epochs.
		lx.memo[pvc] = bounds[:i]
		if r := bounds[i].restore; r != nil && depth < 8 {
			spans = append(lx.inherited(r, depth), spans...)
		}
		for j := range spans {
			if spans[j].Verdict == "" {
				spans[j].Verdict = lx.verdict(spans[j].App, Workload{App: spans[j].App, Label: spans[j].Label, Commit: spans[j].Commit}, spans[j].Version)
			}
		}
		bounds[i].spans = spans
	}
	lx.memo[pvc] = bounds
	return bounds
}

// runningAtRestore is the first sample of the epoch restore r begins: the
// versions the PVC's newest sample before it shows go on writing, now to
// the restored data, from the restore's time (none when no sample came
// before it). Their spans start at the restore, not at the first sample
// after it: that one may be forgotten (a restore.completed later than
// `history` newer snapshots), while the versions running at any time are
// those of the newest remembered sample before it — prune keeps the first
// sample of every set of versions — so the incident a version still
// running opens, and its id, do not depend on the order.
func runningAtRestore(samples []sample, r *Restore) []sample {
	i, _ := slices.BinarySearchFunc(samples, r.Time, sampleAt)
	if i == 0 {
		return nil
	}
	return []sample{{time: r.Time, eventID: r.EventID, workloads: samples[i-1].workloads}}
}

// restoredPoint is where restore r's data comes from: the claim the
// restored snapshot was taken of and its time. The snapshot's own
// completion says, while it is remembered; else the time the
// restore.completed carried (snapshot_time, which the snapshotter sets to
// the snapshot.completed's creation_time), of snapshot_pvc or, without
// it, of the restored claim — so a restore that comes after prune forgot
// the snapshot reads the same point of the same lineage from the samples
// kept (prune keeps the first sample of every set of versions). ok is
// false when neither is known: an event of a producer that predates
// snapshot_time, of a snapshot forgotten or not seen yet.
func restoredPoint(r *Restore, s *Snapshot) (pvc string, at time.Time, ok bool) {
	switch {
	case s != nil && s.Completed:
		pvc, at = s.PVC, s.Time
	case r.SnapshotTime != nil:
		pvc, at = r.PVC, *r.SnapshotTime
	default:
		return "", time.Time{}, false
	}
	if r.SnapshotPVC != "" {
		pvc = r.SnapshotPVC
	}
	return pvc, at, true
}

// inherited are the spans of the restored snapshot's lineage up to its
// time, as the restored PVC's.
func (lx *lineages) inherited(r *Restore, depth int) []Span {
	src, taken, ok := restoredPoint(r, lx.st.Snapshots[r.Snapshot])
	if !ok {
		return []Span{{PVC: r.PVC, Version: "(snapshot " + r.Snapshot + " unknown)", Verdict: Unknown, From: r.Time, Via: r.Snapshot, Cause: r.EventID}}
	}
	var out []Span
	for _, ep := range lx.epochsDepth(src, depth+1) {
		if ep.start.After(taken) {
			break
		}
		out = out[:0]
		for _, sp := range ep.spans {
			if sp.From.After(taken) {
				continue
			}
			sp.PVC = r.PVC
			if sp.Via == "" {
				sp.Via = r.Snapshot
			}
			if sp.To != nil && sp.To.After(taken) {
				sp.To = nil
			}
			out = append(out, sp)
		}
	}
	// The inherited versions stopped writing when the restore began; what
	// runs now is what the PVC's own samples show.
	for i := range out {
		if out[i].To == nil {
			t := r.Time
			out[i].To = &t
		}
	}
	return out
}

// at is the spans of pvc's lineage in force at t.
func (lx *lineages) at(pvc string, t time.Time) []Span {
	eps := lx.epochs(pvc)
	for i := len(eps) - 1; i >= 0; i-- {
		if i == 0 || !eps[i].start.After(t) {
			return eps[i].spans
		}
	}
	return nil
}

// appendLineageSpans appends spans in the events' form to out, for why
// and the decisions.
func appendLineageSpans(out []events.LineageSpan, spans []Span, first bool) []events.LineageSpan {
	out = slices.Grow(out, len(spans))
	for i, sp := range spans {
		ls := events.LineageSpan{PVC: sp.PVC, App: sp.App, Version: sp.Version, Verdict: sp.Verdict, From: sp.From, To: sp.To, Via: sp.Via}
		if first && i == 0 && sp.Via == "" {
			ls.Note = "the lineage starts at stateguard's first observation of the PVC: what wrote to it before is not known"
		}
		if sp.Verdict == Unknown {
			ls.Note = strings.TrimPrefix(ls.Note+"; never scanned: snapshots after it are unknown until its scan arrives", "; ")
		}
		out = append(out, ls)
	}
	return out
}
