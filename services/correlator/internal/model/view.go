package model

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/stateguard/stateguard/pkg/events"
)

// Verdicts and classes.
const (
	Vulnerable = "vulnerable"
	Clean      = "clean"
	Unknown    = "unknown"
	Tainted    = "tainted"
)

// View is derived from a State: a pure function of its facts.
type View struct {
	Namespace string    `json:"namespace"`
	Apps      []AppView `json:"apps"`
	// Pins are the snapshots that must be pinned, and why.
	Pins map[string]Pin `json:"pins,omitempty"`
	// Certificates are the namespace's TLS Secrets.
	Certificates []CertView `json:"certificates,omitempty"`
}

// AppView is an application's posture.
type AppView struct {
	Namespace string `json:"namespace"`
	App       string `json:"app"`
	// Running are the versions on the app's newest snapshot.
	Running   []string            `json:"running"`
	Versions  []VersionView       `json:"versions"`
	Snapshots []SnapshotView      `json:"snapshots"`
	KnownGood map[string][]string `json:"known_good,omitempty"`
	Incidents []IncidentView      `json:"incidents,omitempty"`
	// Secrets are the TLS Secrets the app's workloads mount.
	Secrets []string `json:"secrets,omitempty"`
}

// VersionView is a version and its verdict.
type VersionView struct {
	Version string      `json:"version"`
	Verdict string      `json:"verdict"`
	Uploads []UploadRef `json:"uploads,omitempty"`
}

// UploadRef is the latest upload of one category for a version.
type UploadRef struct {
	UploadID   string                `json:"upload_id"`
	EventID    string                `json:"event_id"`
	Category   string                `json:"category,omitempty"`
	ReceivedAt time.Time             `json:"received_at"`
	Vulnerable bool                  `json:"vulnerable"`
	RuleIDs    []string              `json:"rule_ids,omitempty"`
	Severities []string              `json:"severities,omitempty"`
	Secret     bool                  `json:"secret_exposure,omitempty"`
	Counts     events.SeverityCounts `json:"counts"`
	// Open counts the findings at or above the threshold that are neither
	// suppressed in the SARIF log nor dismissed by an operator.
	Open int `json:"open"`
}

// SnapshotView is a snapshot's class for one application.
type SnapshotView struct {
	Name        string           `json:"name"`
	PVC         string           `json:"pvc"`
	Time        time.Time        `json:"time"`
	Ready       bool             `json:"ready"`
	Class       string           `json:"class"`
	Versions    []VersionVerdict `json:"versions"`
	EventID     string           `json:"event_id"`
	RestoreSize string           `json:"restore_size,omitempty"`
	Workloads   []WorkloadRef    `json:"workloads,omitempty"`
}

// VersionVerdict is a version seen on a snapshot and its verdict.
type VersionVerdict struct {
	Version string `json:"version"`
	Verdict string `json:"verdict"`
}

// IncidentView is a run of snapshots on which a vulnerable version ran,
// ended by the first clean snapshot after it.
type IncidentView struct {
	ID        string          `json:"id"`
	App       string          `json:"app"`
	Open      bool            `json:"open"`
	Versions  []string        `json:"versions"`
	Start     string          `json:"start_snapshot"`
	StartTime time.Time       `json:"start_time"`
	End       string          `json:"end_snapshot,omitempty"`
	Reasons   []events.Reason `json:"reasons"`
	Causes    []string        `json:"causes"`
	// RestorePoints are, per PVC, the newest clean, ready snapshot taken
	// before the incident started.
	RestorePoints []SnapshotView `json:"restore_points,omitempty"`
	// SecretExposure: a finding points at exposed keys or credentials.
	SecretExposure bool     `json:"secret_exposure,omitempty"`
	Secrets        []string `json:"secrets,omitempty"`
	CloseCauses    []string `json:"close_causes,omitempty"`
	CloseReason    string   `json:"close_reason,omitempty"`
	// Lineage is, per PVC the incident touches, every version that wrote
	// to its data since its lineage began, with its interval and verdict.
	Lineage []events.LineageSpan `json:"lineage,omitempty"`
	// ClosedAt is when a closed incident ended: the time of the fact that
	// closed it (a restore, a resolution, a clean snapshot), so that
	// replays agree on it.
	ClosedAt time.Time `json:"closed_at,omitzero"`
}

// CertView is a TLS Secret's certificate posture.
type CertView struct {
	Secret        string     `json:"secret"`
	Serial        string     `json:"serial"`
	NotAfter      time.Time  `json:"not_after"`
	DaysLeft      float64    `json:"days_left"`
	ObservedAt    time.Time  `json:"observed_at"`
	CertManager   string     `json:"cert_manager,omitempty"`
	RenewalTime   *time.Time `json:"renewal_time,omitempty"`
	RenewsInTime  bool       `json:"renews_in_time,omitempty"`
	Rotated       bool       `json:"rotated,omitempty"`
	NeedsRotation bool       `json:"needs_rotation,omitempty"`
	Reason        string     `json:"reason,omitempty"`
	Causes        []string   `json:"causes,omitempty"`
	Users         Users      `json:"users"`
}

// Derive computes the view of st under r, every application afresh.
func Derive(r Rules, st *State) View {
	apps := appNames(st)
	views := make([]*AppView, len(apps))
	pins := make([]*appPins, len(apps))
	for i, app := range apps {
		av := deriveApp(r, st, app, nil, reuse{pods: true})
		views[i], pins[i] = &av, pinsOf(&av)
	}
	return assemble(st.Namespace, views, pins, certViews(r, st))
}

// appNames lists, sorted, the applications st knows of: those that ran on
// a snapshot and those named by an upload.
func appNames(st *State) []string {
	apps := map[string]bool{}
	for _, s := range st.Snapshots {
		for _, w := range s.Workloads {
			apps[w.App] = true
		}
	}
	for _, u := range st.Uploads {
		apps[u.App] = true
	}
	return sortedKeys(apps)
}

// assemble builds the namespace's view from its applications' views (in
// the order of their names) and pins, and its certificates.
func assemble(ns string, apps []*AppView, pins []*appPins, certs []CertView) View {
	v := View{Namespace: ns, Pins: map[string]Pin{}, Certificates: certs, Apps: make([]AppView, 0, len(apps))}
	for i, av := range apps {
		for _, kp := range pins[i].known {
			if _, ok := v.Pins[kp.name]; !ok {
				v.Pins[kp.name] = kp.pin
			}
		}
		for _, rp := range pins[i].restore {
			if p := v.Pins[rp.name]; p.Incident == "" || rp.pin.Incident < p.Incident {
				v.Pins[rp.name] = rp.pin
			}
		}
		v.Apps = append(v.Apps, *av)
	}
	return v
}

// appPins are the pins an application's view calls for: its known-good
// snapshots, and the restore points of its open incidents (which win over
// a known-good pin, the smallest incident id first).
type appPins struct {
	known, restore []namedPin
}

type namedPin struct {
	name string
	pin  Pin
}

func pinsOf(av *AppView) *appPins {
	ps := &appPins{}
	for _, pvc := range sortedKeys(av.KnownGood) {
		for _, n := range av.KnownGood[pvc] {
			ps.known = append(ps.known, namedPin{n, Pin{PVC: pvc, Reason: "known-good: newest clean, ready snapshot of the PVC", Causes: av.snapshotCauses(n)}})
		}
	}
	for _, inc := range av.Incidents {
		if !inc.Open {
			continue
		}
		for _, rp := range inc.RestorePoints {
			causes, _ := setAdd(slices.Clone(inc.Causes), rp.EventID)
			ps.restore = append(ps.restore, namedPin{rp.Name, Pin{PVC: rp.PVC, Reason: "restore point of incident " + inc.ID, Incident: inc.ID, Causes: causes}})
		}
	}
	return ps
}

// App returns the view of one application.
func (v View) App(app string) (AppView, bool) {
	i := slices.IndexFunc(v.Apps, func(a AppView) bool { return a.App == app })
	if i < 0 {
		return AppView{}, false
	}
	return v.Apps[i], true
}

// Snapshot finds a snapshot's view.
func (av AppView) Snapshot(name string) (SnapshotView, bool) {
	i := slices.IndexFunc(av.Snapshots, func(s SnapshotView) bool { return s.Name == name })
	if i < 0 {
		return SnapshotView{}, false
	}
	return av.Snapshots[i], true
}

// snapshotCauses are the snapshot's event and the uploads behind the
// verdicts of its versions.
func (av AppView) snapshotCauses(name string) []string {
	sv, ok := av.Snapshot(name)
	if !ok {
		return nil
	}
	causes := []string{sv.EventID}
	for _, vv := range sv.Versions {
		i := slices.IndexFunc(av.Versions, func(v VersionView) bool { return v.Version == vv.Version })
		if i < 0 {
			continue
		}
		for _, u := range av.Versions[i].Uploads {
			causes, _ = setAdd(causes, u.EventID)
		}
	}
	slices.Sort(causes)
	return slices.Compact(causes)
}

// scratchViews are buffers deriveApp builds snapshot views in.
var scratchViews sync.Pool

type verdicts struct {
	r     Rules
	st    *State
	app   string
	byKey map[string][]*Upload
	cache map[string]VersionView
}

func newVerdicts(r Rules, st *State, app string) *verdicts {
	vd := &verdicts{r: r, st: st, app: app, byKey: map[string][]*Upload{}, cache: map[string]VersionView{}}
	for _, u := range st.Uploads {
		if u.App != app {
			continue
		}
		for _, k := range u.Keys {
			vd.byKey[k] = append(vd.byKey[k], u)
		}
	}
	return vd
}

func (vd *verdicts) of(key string) VersionView {
	if v, ok := vd.cache[key]; ok {
		return v
	}
	latest := map[string]*Upload{}
	for _, u := range vd.byKey[key] {
		if o, ok := latest[u.Category]; !ok || newer(u, o) {
			latest[u.Category] = u
		}
	}
	v := VersionView{Version: key, Verdict: Unknown}
	if len(latest) > 0 {
		v.Verdict = Clean
	}
	for _, cat := range sortedKeys(latest) {
		u := latest[cat]
		ref := UploadRef{UploadID: u.ID, EventID: u.EventID, Category: u.Category, ReceivedAt: u.ReceivedAt, Counts: u.Counts}
		ref.Open = openFindings(vd.r.Threshold, u, vd.st.Dismissals)
		ref.Vulnerable = ref.Open > 0
		for _, f := range u.Findings {
			if f.Suppressed || dismissed(vd.st.Dismissals, u.App, f) {
				continue
			}
			if sev, err := ParseSeverity(f.Severity); err == nil && sev >= vd.r.Threshold {
				ref.RuleIDs, _ = setAdd(ref.RuleIDs, f.RuleID)
				ref.Severities, _ = setAdd(ref.Severities, sev.String())
			}
			if vd.r.isSecretFinding(f) {
				ref.Secret = true
			}
		}
		if ref.Vulnerable {
			v.Verdict = Vulnerable
			if len(ref.Severities) == 0 {
				ref.Severities = severitiesOf(u.Counts, vd.r.Threshold)
			}
		}
		v.Uploads = append(v.Uploads, ref)
	}
	vd.cache[key] = v
	return v
}

// ofWorkload is the verdict of a version a workload ran: by digest, else by
// the workload's version label.
func (vd *verdicts) ofWorkload(w Workload, key string) VersionView {
	v := vd.of(key)
	if v.Verdict == Unknown && w.Label != "" {
		if lv := vd.of("version:" + w.Label); lv.Verdict != Unknown {
			lv.Version = key
			return lv
		}
	}
	return v
}

// openFindings counts the findings of u at or above t that are open: not
// suppressed in the SARIF log (u.Suppressed) and not dismissed by an
// operator (matched in u's findings by rule id and fingerprint).
func openFindings(t Severity, u *Upload, dismissals map[string]*Dismissal) int {
	n := atOrAbove(u.Counts, t)
	if u.Suppressed != nil {
		n -= atOrAbove(*u.Suppressed, t)
	}
	for _, f := range u.Findings {
		if sev, err := ParseSeverity(f.Severity); err == nil && sev >= t && !f.Suppressed && dismissed(dismissals, u.App, f) {
			n--
		}
	}
	return max(n, 0)
}

// dismissed reports whether an operator dismissed f, by its fingerprint
// or every finding of its rule.
func dismissed(dismissals map[string]*Dismissal, app string, f Finding) bool {
	if len(dismissals) == 0 {
		return false
	}
	if _, ok := dismissals[dismissalKey(app, f.RuleID, "")]; ok {
		return true
	}
	_, ok := dismissals[dismissalKey(app, f.RuleID, f.Fingerprint)]
	return ok && f.Fingerprint != ""
}

func atOrAbove(c events.SeverityCounts, t Severity) int {
	n := 0
	for s, count := range []int{c.None, c.Low, c.Medium, c.High, c.Critical} {
		if Severity(s) >= t {
			n += count
		}
	}
	return n
}

func severitiesOf(c events.SeverityCounts, t Severity) []string {
	var out []string
	for s, count := range []int{c.None, c.Low, c.Medium, c.High, c.Critical} {
		if Severity(s) >= t && count > 0 {
			out = append(out, Severity(s).String())
		}
	}
	slices.Sort(out)
	return out
}

// deriveApp derives the view of app. timeline lists the completed
// snapshots app ran on, oldest first (read only); nil when unknown. The
// view of a snapshot that did not change since ru.prev is taken from it.
func deriveApp(r Rules, st *State, app string, timeline []*Snapshot, ru reuse) AppView {
	av := AppView{Namespace: st.Namespace, App: app, KnownGood: map[string][]string{}}
	vd := ru.verdicts
	if vd == nil {
		vd = newVerdicts(r, st, app)
	}
	if timeline == nil {
		for _, s := range st.Snapshots {
			if s.Completed && s.ran(app) {
				timeline = append(timeline, s)
			}
		}
		slices.SortFunc(timeline, snapshotLess)
	}
	seen := map[string]bool{}
	owners := map[WorkloadRef]bool{}
	pods := map[string]bool{}
	// Most snapshots of an app name the same owner and pod as the one
	// before: skip hashing those again.
	var lastOwner WorkloadRef
	lastPod := ""
	var views, scratch []SnapshotView
	if ru.prev != nil {
		// Built in a scratch buffer, then copied over the previous view's
		// array (read until then): no new array per event.
		b, _ := scratchViews.Get().(*[]SnapshotView)
		if b == nil {
			b = new([]SnapshotView)
		}
		views = (*b)[:0]
		defer func() {
			clear(scratch) // drop what the views point to
			*b = scratch[:0]
			scratchViews.Put(b)
		}()
	} else {
		views = make([]SnapshotView, 0, len(timeline))
	}
	var before map[*Snapshot]int
	if ru.prev != nil {
		before = make(map[*Snapshot]int, len(ru.prev.snaps))
		for i, s := range ru.prev.snaps {
			before[s] = i
		}
	}
	// The views' workload and version lists share two backing arrays
	// (each list capped at its length): two allocations, not two per
	// snapshot, on every event.
	var refs []WorkloadRef
	var vers []VersionVerdict
	for _, s := range timeline {
		if i, ok := before[s]; ok && !ru.changed[s] {
			sv := ru.prev.view.Snapshots[i]
			for _, o := range sv.Workloads {
				if o != lastOwner || len(owners) == 0 {
					owners[o] = true
					lastOwner = o
				}
			}
			for _, vv := range sv.Versions {
				seen[vv.Version] = true
			}
			if ru.pods {
				for _, w := range s.Workloads {
					if w.App == app && w.Pod != "" {
						pods[w.Pod] = true
					}
				}
			}
			views = append(views, sv)
			continue
		}
		sv := SnapshotView{Name: s.Name, PVC: s.PVC, Time: s.Time, Ready: s.ready(), EventID: s.EventID, RestoreSize: s.RestoreSize}
		anyVuln, allClean, any := false, true, false
		rstart, vstart := len(refs), len(vers)
		for _, w := range s.Workloads {
			if w.App != app {
				continue
			}
			if w.Owner != nil {
				if *w.Owner != lastOwner || len(owners) == 0 {
					owners[*w.Owner] = true
					lastOwner = *w.Owner
				}
				if !slices.Contains(refs[rstart:], *w.Owner) {
					refs = append(refs, *w.Owner)
				}
			}
			if ru.pods && w.Pod != "" && (w.Pod != lastPod || len(pods) == 0) {
				pods[w.Pod] = true
				lastPod = w.Pod
			}
			for _, k := range w.Versions {
				vv := vd.ofWorkload(w, k)
				any = true
				vers = append(vers, VersionVerdict{Version: k, Verdict: vv.Verdict})
				seen[k] = true
				switch vv.Verdict {
				case Vulnerable:
					anyVuln = true
				case Unknown:
					if !r.UnknownIsClean {
						allClean = false
					}
				}
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
		switch {
		case anyVuln:
			sv.Class = Tainted
		case any && allClean:
			sv.Class = Clean
		default:
			sv.Class = Unknown
		}
		// Snapshot after snapshot an app runs the same owners and versions:
		// share the lists of the view before (fewer, hotter arrays).
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
	if ru.prev != nil {
		scratch = views
		own := ru.prev.view.Snapshots
		if cap(own) < len(views) {
			own = make([]SnapshotView, 0, len(views)+len(views)/8+1)
		}
		views = append(own[:0], views...)
	}
	av.Snapshots = views
	keys := map[string]bool{}
	for k := range seen {
		keys[k] = true
	}
	for _, u := range st.Uploads {
		if u.App != app {
			continue
		}
		// List an upload by its digests; its commit and version label are
		// aliases, shown only when it names no digest.
		digests := slices.ContainsFunc(u.Keys, func(k string) bool { return strings.HasPrefix(k, "sha256:") })
		for _, k := range u.Keys {
			if !digests || strings.HasPrefix(k, "sha256:") {
				keys[k] = true
			}
		}
	}
	for _, k := range sortedKeys(keys) {
		av.Versions = append(av.Versions, vd.of(k))
	}
	lx := newLineages(st, pvcSnapshots(st), lineageVerdict(r, st, app, vd))
	eps := map[string][]epoch{}
	for _, pvc := range pvcsOf(st, app, timeline) {
		eps[pvc] = lx.epochs(pvc)
	}
	classifyByLineage(r, lx, views)
	av.Running = runningOf(app, eps)
	av.KnownGood = chooseKnownGood(views, r.KeepKnownGood)
	av.Secrets = secretsOf(st, app, owners, pods)
	current := map[string][]Span{}
	for pvc := range eps {
		current[pvc] = lx.current(pvc)
	}
	for _, g := range incidentSpans(st.Namespace, app, eps, st.Resolutions) {
		av.Incidents = append(av.Incidents, dressIncident(r, app, g, vd, views, av.Secrets, current))
	}
	return av
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
	for _, o := range st.Observations {
		if slices.ContainsFunc(o.Workloads, func(w Workload) bool { return w.App == app }) {
			set[o.PVC] = true
		}
	}
	return sortedKeys(set)
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

// secretsOf lists the TLS Secrets mounted by the app's workloads or pods.
func secretsOf(st *State, app string, owners map[WorkloadRef]bool, pods map[string]bool) []string {
	var out []string
	for _, name := range sortedKeys(st.Certs) {
		c := st.Certs[name]
		match := slices.ContainsFunc(c.Users.Pods, func(p string) bool { return pods[p] })
		for _, w := range c.Users.Workloads {
			if owners[w] || w.Name == app {
				match = true
			}
			for o := range owners {
				if o.Name == w.Name && o.Namespace == w.Namespace && (o.Kind == "" || w.Kind == "" || strings.EqualFold(o.Kind, w.Kind)) {
					match = true
				}
			}
		}
		if match {
			out = append(out, name)
		}
	}
	for _, o := range st.Observations {
		for _, sec := range o.Secrets[app] {
			out, _ = setAdd(out, sec)
		}
	}
	return out
}

func finishIncident(inc *IncidentView, secrets []string) IncidentView {
	slices.SortFunc(inc.Reasons, func(a, b events.Reason) int {
		return cmp.Or(strings.Compare(a.Version, b.Version), strings.Compare(a.UploadID, b.UploadID))
	})
	slices.Sort(inc.Causes)
	inc.Causes = slices.Compact(inc.Causes)
	if inc.SecretExposure {
		inc.Secrets = secrets
	}
	return *inc
}

func certViews(r Rules, st *State) []CertView {
	var out []CertView
	for _, name := range sortedKeys(st.Certs) {
		c := st.Certs[name]
		for _, serial := range sortedKeys(c.Observations) {
			obs := c.Observations[serial]
			var best CertObservation
			bestID := ""
			var causes []string
			for _, id := range sortedKeys(obs) {
				causes = append(causes, id)
				o := obs[id]
				if bestID == "" || o.DaysLeft < best.DaysLeft {
					best, bestID = o, id
				}
			}
			cv := CertView{
				Secret: name, Serial: serial, NotAfter: best.NotAfter, DaysLeft: best.DaysLeft,
				ObservedAt:  best.ObservedAt,
				CertManager: best.CertManager, RenewalTime: best.RenewalTime, Causes: causes, Users: c.Users,
			}
			if cv.ObservedAt.IsZero() {
				cv.ObservedAt = best.NotAfter.Add(-time.Duration(best.DaysLeft * float64(24*time.Hour)))
			}
			if rid, ok := c.Rotated[serial]; ok {
				cv.Rotated = true
				cv.Causes = append(cv.Causes, rid)
			}
			if cv.CertManager != "" && cv.RenewalTime != nil {
				rt := *cv.RenewalTime
				cv.RenewsInTime = !rt.After(cv.NotAfter.Add(-r.RenewalMargin)) && !rt.Before(cv.ObservedAt.Add(-time.Hour))
			}
			threshold := r.RotationThreshold.Hours() / 24
			switch {
			case cv.Rotated:
			case cv.DaysLeft > threshold:
			case cv.RenewsInTime:
				cv.Reason = fmt.Sprintf("cert-manager Certificate %s renews at %s, before notAfter %s", cv.CertManager, cv.RenewalTime.Format(time.RFC3339), cv.NotAfter.Format(time.RFC3339))
			default:
				cv.NeedsRotation = true
				cv.Reason = fmt.Sprintf("certificate %s expires in %s days (at or below the rotation threshold of %s days)", serial, trimFloat(cv.DaysLeft), trimFloat(threshold))
				if cv.CertManager != "" {
					cv.Reason += "; cert-manager will not renew it in time"
				}
			}
			out = append(out, cv)
		}
	}
	return out
}

func trimFloat(f float64) string {
	return strings.TrimSuffix(fmt.Sprintf("%.1f", math.Round(f*10)/10), ".0")
}

func hash(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:24]
}

func compareRef(a, b WorkloadRef) int {
	return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Kind, b.Kind), strings.Compare(a.Name, b.Name))
}
