package model

import (
	"slices"
	"strings"
	"sync"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/correlator/internal/ordered"
)

// deriveApp derives the view of app by applying the rules in order, each
// its own function: the snapshots app ran on and the verdicts of what they
// show (snapshotView), the lineage of every PVC app wrote to (lineages),
// each snapshot's class from its lineage (classify), the running versions
// (runningOf), the known-good set (chooseKnownGood), the Secrets its
// workloads mount (secretsOf) and its incidents (incidentsOf).
//
// timeline lists the completed snapshots app ran on, oldest first (read
// only); nil when unknown. ru is what the cache may take over from app's
// previous view (snapshotViews): that is the only place with buffers and
// reuse, every rule is a function of its arguments.
func deriveApp(r Rules, st *State, app string, timeline []*Snapshot, ru reuse) AppView {
	vd := ru.verdicts
	if vd == nil {
		vd = newVerdicts(r, st, app)
	}
	if timeline == nil {
		timeline = timelineOf(st, app)
	}
	views := snapshotViews(app, timeline, vd, ru)
	lx := newLineages(st, pvcSnapshots(st), lineageVerdict(r, st, app, vd))
	eps := map[string][]epoch{}
	for _, pvc := range pvcsOf(st, app, timeline) {
		eps[pvc] = lx.epochs(pvc)
	}
	classifyByLineage(r, lx, views)
	av := AppView{
		Namespace: st.Namespace, App: app, Snapshots: views,
		Versions:  versionsOf(vd, versionKeys(st, app, views)),
		Running:   runningOf(app, eps),
		KnownGood: chooseKnownGood(views, r.KeepKnownGood),
	}
	av.UnencryptedKnownGood = unencryptedKnownGood(views, av.KnownGood)
	var pods map[string]bool
	if ru.pods {
		pods = podsOf(app, timeline)
	}
	av.Secrets = secretsOf(st, app, ownersOf(views), pods)
	av.Incidents = incidentsOf(r, st.Namespace, app, vd, eps, st.Resolutions, views, av.Secrets)
	return av
}

// timelineOf lists the completed snapshots app ran on, oldest first.
func timelineOf(st *State, app string) []*Snapshot {
	var timeline []*Snapshot
	for _, s := range st.Snapshots {
		if s.Completed && s.ran(app) {
			timeline = append(timeline, s)
		}
	}
	slices.SortFunc(timeline, snapshotLess)
	return timeline
}

// snapshotView is what snapshot s shows of app: its readiness, the
// workloads of app that wrote to it and the verdict of every version they
// ran (by digest, else by the workload's version label). Its class follows
// from its lineage (classifyByLineage). The two lists are appended to refs
// and vers (capped at their length), which are returned grown, so that the
// views of a timeline share two arrays.
func snapshotView(s *Snapshot, app string, vd *verdicts, refs []WorkloadRef, vers []VersionVerdict) (SnapshotView, []WorkloadRef, []VersionVerdict) {
	sv := snapshotFacts(s)
	rstart, vstart := len(refs), len(vers)
	for _, w := range s.Workloads {
		if w.App != app {
			continue
		}
		if w.Owner != nil && !slices.Contains(refs[rstart:], *w.Owner) {
			refs = append(refs, *w.Owner)
		}
		for _, k := range w.Versions {
			vers = append(vers, VersionVerdict{Version: k, Verdict: vd.ofWorkload(w, k).Verdict})
		}
	}
	if len(refs) > rstart {
		sv.Workloads = refs[rstart:len(refs):len(refs)]
	}
	if cur := vers[vstart:]; len(cur) > 0 {
		slices.SortFunc(cur, func(a, b VersionVerdict) int { return strings.Compare(a.Version, b.Version) })
		cur = slices.Compact(cur)
		vers = vers[:vstart+len(cur)]
		sv.Versions = cur[:len(cur):len(cur)]
	}
	return sv, refs, vers
}

// snapshotFacts is the part of a snapshot's view that is the snapshot's
// own facts, the same for every application.
func snapshotFacts(s *Snapshot) SnapshotView {
	return SnapshotView{Name: s.Name, PVC: s.PVC, Time: s.Time, Ready: s.ready(), EventID: s.EventID, RestoreSize: s.RestoreSize,
		Encryption: s.Encryption, EncryptionEvidence: s.EncryptionEvidence}
}

// viewBuffers are the arrays of snapshot views: an application's are
// needed only while an event is applied (the view cache keeps them
// compact in between: appViews.compact), so they go back here.
var viewBuffers sync.Pool

// viewBuffer is an empty array for n snapshot views, from viewBuffers.
func viewBuffer(n int) []SnapshotView {
	if p, _ := viewBuffers.Get().(*[]SnapshotView); p != nil && cap(*p) >= n {
		return (*p)[:0]
	}
	return make([]SnapshotView, 0, n+n/8+1)
}

// positionsPool holds the maps snapshotViews indexes the previous view's
// snapshots in (one per derived application and event: 4% of the bytes an
// event allocated).
var positionsPool = sync.Pool{New: func() any { return map[*Snapshot]int{} }}

// snapshotViews are the views of app's snapshots over timeline: the
// caching wrapper around snapshotView. The view of a snapshot that did not
// change since ru.prev is taken from it; a view whose lists equal those of
// the view before shares them (snapshot after snapshot an app runs the same
// owners and versions: fewer, hotter arrays). The array comes from
// viewBuffers.
func snapshotViews(app string, timeline []*Snapshot, vd *verdicts, ru reuse) []SnapshotView {
	views := viewBuffer(len(timeline))
	var before map[*Snapshot]int
	if ru.prev != nil {
		before = positionsPool.Get().(map[*Snapshot]int)
		defer func() { clear(before); positionsPool.Put(before) }()
		for i, s := range ru.prev.snaps {
			before[s] = i
		}
	}
	var refs []WorkloadRef
	var vers []VersionVerdict
	for _, s := range timeline {
		if i, ok := before[s]; ok && !ru.changed[s] {
			views = append(views, ru.prev.snapshotView(i))
			continue
		}
		rstart, vstart := len(refs), len(vers)
		var sv SnapshotView
		sv, refs, vers = snapshotView(s, app, vd, refs, vers)
		if n := len(views); n > 0 {
			if last := views[n-1]; sv.Workloads != nil && slices.Equal(last.Workloads, sv.Workloads) {
				sv.Workloads, refs = last.Workloads, refs[:rstart]
			}
			if last := views[n-1]; sv.Versions != nil && slices.Equal(last.Versions, sv.Versions) {
				sv.Versions, vers = last.Versions, vers[:vstart]
			}
		}
		views = append(views, sv)
	}
	return views
}

// versionKeys are the versions app's view lists, sorted: those its
// snapshots show, and those its uploads cover — an upload by its digests;
// its commit and version label are aliases, listed only when it names no
// digest.
func versionKeys(st *State, app string, views []SnapshotView) []string {
	keys := map[string]bool{}
	var last []VersionVerdict
	for _, sv := range views {
		if sameList(sv.Versions, last) {
			continue
		}
		last = sv.Versions
		for _, vv := range sv.Versions {
			keys[vv.Version] = true
		}
	}
	for _, u := range st.uploadsOf(app) {
		digests := slices.ContainsFunc(u.Keys, func(k string) bool { return strings.HasPrefix(k, "sha256:") })
		for _, k := range u.Keys {
			if !digests || strings.HasPrefix(k, "sha256:") {
				keys[k] = true
			}
		}
	}
	return ordered.Keys(keys)
}

// versionsOf are the verdicts of keys.
func versionsOf(vd *verdicts, keys []string) []VersionView {
	if len(keys) == 0 {
		return nil
	}
	out := make([]VersionView, 0, len(keys)) // kept with the view: no spare room
	for _, k := range keys {
		out = append(out, vd.of(k))
	}
	return out
}

// ownersOf are the workloads named by views.
func ownersOf(views []SnapshotView) map[WorkloadRef]bool {
	owners := map[WorkloadRef]bool{}
	var last []WorkloadRef
	for _, sv := range views {
		if sameList(sv.Workloads, last) {
			continue // shared with the view before: seen
		}
		last = sv.Workloads
		for _, o := range sv.Workloads {
			owners[o] = true
		}
	}
	return owners
}

// podsOf are the pods of app that wrote to the snapshots of timeline.
func podsOf(app string, timeline []*Snapshot) map[string]bool {
	pods := map[string]bool{}
	last := ""
	for _, s := range timeline {
		for _, w := range s.Workloads {
			if w.App == app && w.Pod != "" && w.Pod != last {
				pods[w.Pod] = true
				last = w.Pod
			}
		}
	}
	return pods
}

// sameList reports whether a and b are the same non-empty list (one array,
// not equal contents).
func sameList[T any](a, b []T) bool {
	return len(a) > 0 && len(a) == len(b) && &a[0] == &b[0]
}

// classifyByLineage sets each snapshot's class from the lineage of its
// PVC at its time (classify).
func classifyByLineage(r Rules, lx *lineages, views []SnapshotView) {
	for i := range views {
		views[i].Class = classify(lx.at(views[i].PVC, views[i].Time), views[i].Time, r.UnknownIsClean)
	}
}

// lineageVerdict is the verdict of a version that wrote to a volume: by
// app's verdicts, or another application's on a shared volume.
func lineageVerdict(r Rules, st *State, app string, vd *verdicts) func(string, Workload, string) string {
	others := map[string]*verdicts{app: vd}
	return func(a string, w Workload, version string) string {
		v := others[a]
		if v == nil {
			v = newVerdicts(r, st, a)
			others[a] = v
		}
		return v.ofWorkload(w, version).Verdict
	}
}

// pvcsOf lists the PVCs app wrote to: those of its snapshots and of the
// observations that show it.
func pvcsOf(st *State, app string, timeline []*Snapshot) []string {
	set := map[string]bool{}
	for _, s := range timeline {
		set[s.PVC] = true
	}
	for _, o := range st.observationsNaming(app) {
		if slices.ContainsFunc(o.Workloads, func(w Workload) bool { return w.App == app }) {
			set[o.PVC] = true
		}
	}
	return ordered.Keys(set)
}

// runningOf are app's versions on the newest sample of its PVCs.
func runningOf(app string, eps map[string][]epoch) []string {
	var out []string
	for _, list := range eps {
		for _, sp := range list[len(list)-1].spans {
			if sp.App == app && sp.To == nil && sp.Via == "" {
				out, _ = setAdd(out, sp.Version)
			}
		}
	}
	return out
}

// pvcSnapshots groups the completed snapshots by PVC, oldest first (the
// cache's lists when it has them).
func pvcSnapshots(st *State) map[string][]*Snapshot {
	if st.cache != nil && st.cache.byPVC != nil {
		return st.cache.byPVC
	}
	return completedByPVC(st)
}

// secretsOf is the key exposure rule's reach: the TLS Secrets mounted by
// app's workloads (owners) or pods, as the certificates' users name them,
// and those its pods mount by the observations.
func secretsOf(st *State, app string, owners map[WorkloadRef]bool, pods map[string]bool) []string {
	var out []string
	for _, name := range st.certsNaming(app, owners, pods) {
		if usedBy(st.Certs[name].Users, app, owners, pods) {
			out = append(out, name)
		}
	}
	for _, o := range st.observationsNaming(app) {
		for _, sec := range o.Secrets[app] {
			out, _ = setAdd(out, sec)
		}
	}
	return out
}

// usedBy reports whether a certificate's users include one of app's pods
// or workloads (a workload named like the app, or like one of its owners
// with the same kind when both say it).
func usedBy(u Users, app string, owners map[WorkloadRef]bool, pods map[string]bool) bool {
	if slices.ContainsFunc(u.Pods, func(p string) bool { return pods[p] }) {
		return true
	}
	for _, w := range u.Workloads {
		if owners[w] || w.Name == app {
			return true
		}
		for o := range owners {
			if o.Name == w.Name && o.Namespace == w.Namespace && (o.Kind == "" || w.Kind == "" || strings.EqualFold(o.Kind, w.Kind)) {
				return true
			}
		}
	}
	return false
}

// incidentsOf are app's incidents: the groups of vulnerable spans of its
// PVCs' epochs (incidentSpans), each dressed with its reasons, restore
// points and the current lineage of its PVCs (dressIncident).
func incidentsOf(r Rules, ns, app string, vd *verdicts, eps map[string][]epoch, resolutions map[string]*Resolution, views []SnapshotView, secrets []string) []IncidentView {
	current := map[string][]Span{}
	for pvc, list := range eps {
		if len(list) > 0 {
			current[pvc] = list[len(list)-1].spans
		}
	}
	var out []IncidentView
	for _, g := range incidentSpans(ns, app, eps, resolutions) {
		out = append(out, dressIncident(r, app, g, vd, views, secrets, current))
	}
	return out
}

// unencryptedKnownGood lists, sorted, the known-good snapshots whose
// encryption at rest the snapshotter reported unencrypted.
func unencryptedKnownGood(views []SnapshotView, knownGood map[string][]string) []string {
	var out []string
	for _, v := range views {
		if v.Encryption == events.EncryptionUnencrypted && slices.Contains(knownGood[v.PVC], v.Name) && !slices.Contains(out, v.Name) {
			out = append(out, v.Name)
		}
	}
	slices.Sort(out)
	return out
}
