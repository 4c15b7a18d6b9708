package model

import (
	"maps"
	"slices"

	"github.com/stateguard/stateguard/services/correlator/internal/ordered"
)

// viewCache keeps, between two events, the views of a namespace's
// applications and certificates, so an event re-derives only the
// applications whose facts it changed (in a namespace of dozens of
// applications, one). It lives with the State in memory and is never
// stored; a State read back has none, and its first event derives
// everything.
//
// An application's view is a pure function of the rules, the snapshots it
// ran on, its uploads and the namespace's certificates (the Secrets its
// workloads mount), so merge and prune mark an application dirty whenever
// one of those changes, and a certificate whose users grew marks those it
// now names. Through
// the lineage it also reads what other applications wrote to its PVCs (a
// shared PVC) or to a snapshot restored into one: where that can happen
// (lineageCrossesApps) every change marks every application.
type viewCache struct {
	rules Rules
	apps  map[string]*appViews
	dirty map[string]bool
	// changed are the snapshots whose facts changed since the last
	// derivation, uploaded the applications whose uploads did: the views of
	// other snapshots of an application are taken over as they are.
	changed  map[*Snapshot]bool
	uploaded map[string]bool
	all      bool // every application is dirty
	// certsBy are the views of each TLS Secret's certificate (certViewsOf),
	// nil until built; certsDue the Secrets whose views are stale, so a
	// certificate event re-derives its own Secret's views, not the
	// namespace's (at 1,000 applications in one namespace, rebuilding
	// every view for each certificate event was a tenth of the
	// correlator's time). certs lists every view in Secret order, as
	// certViews does (certsOK false: to be listed again when read);
	// certsFresh are the Secrets whose views were derived since the last
	// derivation, for decide.
	certsBy    map[string][]CertView
	certsDue   map[string]bool
	certs      []CertView
	certsOK    bool
	certsFresh []string
	// refs counts, per application, the workloads of snapshots and the
	// uploads that name it, so the applications are known without going
	// over every snapshot; names are its keys, sorted (nil when stale).
	refs  map[string]int
	names []string
	// byPVC lists each PVC's completed snapshots, oldest first, so prune
	// looks at the PVC's oldest ones only.
	byPVC map[string][]*Snapshot
	// byApp lists the completed snapshots each application ran on, oldest
	// first: its timeline.
	byApp map[string][]*Snapshot
	// usersChanged are the Secrets whose users grew since the last
	// derivation.
	usersChanged []string
	// appsByOwner and appsByPod list, by an owner's name and by a pod, the
	// applications whose timelines name it, so usersGrew checks those only
	// (usedBy decides): a superset, nothing is taken out when a snapshot
	// goes. appsByPod is nil until a certificate's users name pods.
	appsByOwner map[string][]string
	appsByPod   map[string][]string
	// crosses is lineageCrossesApps, once known (crossesOK); a snapshot
	// that comes sets it when it shares its PVC with another application.
	crosses, crossesOK bool
	// idx finds an application's facts without going over the namespace's.
	idx *factIndex
	// pins are the pins the namespace's view calls for (assemble's),
	// pinApps the applications whose views pin each snapshot, in name
	// order: an event updates the pins of the snapshots its applications
	// pin or pinned.
	pins    map[string]Pin
	pinApps map[string][]string
	// mountedPods is mountedByPods, as of certsBy (users only grow).
	mountedPods bool
	// pruneDue are the PVCs whose snapshots or pins changed since prune
	// last looked at them; pruneAll says it must look at every one.
	pruneDue map[string]bool
	pruneAll bool
	// obsRecheck are the PVCs whose snapshots or observations changed
	// since pruneObservations last looked at them.
	obsRecheck map[string]bool
	// full are the application views whose snapshot views were built or
	// read since the last compactViews.
	full []*appViews
}

// pruneLaterSnapshot notes that prune must look at the snapshots of the
// PVC of the snapshot name (when it is known) again.
func (st *State) pruneLaterSnapshot(name string) {
	if s, ok := st.Snapshots[name]; ok {
		st.pruneLater(s.PVC)
	}
}

// pruneLater notes that prune must look at pvc's snapshots again.
func (st *State) pruneLater(pvc string) {
	if c := st.cache; c != nil {
		if c.pruneDue == nil {
			c.pruneDue = map[string]bool{}
		}
		c.pruneDue[pvc] = true
	}
}

// touch marks app dirty.
func (st *State) touch(app string) {
	if c := st.cache; c != nil && !c.all {
		c.dirty[app] = true
	}
}

// appViews is an application's view and the snapshots behind its
// snapshot views, in the same order.
//
// Between events the view is kept compact: view.Snapshots is nil and marks
// say, per snapshot, only what the view adds to the snapshot's own facts —
// its class and its lists of versions and owners (an index into lists,
// which consecutive snapshots share). A snapshot view was 200 bytes per
// application and snapshot, two fifths of the state a long run keeps
// (#14); a mark is 8. materialize builds the views again when they are
// read.
type appViews struct {
	view  AppView
	snaps []*Snapshot
	// verdicts are the app's verdicts, kept while its uploads are the same.
	verdicts *verdicts
	pins     *appPins
	marks    []snapMark
	lists    []viewLists
	// pooled: view.Snapshots came from viewBuffers and nobody else holds
	// it, so compact gives it back.
	pooled bool
}

// snapMark is what an application's view says of one snapshot beyond the
// snapshot's facts: its class (an index into classes) and its lists.
type snapMark struct {
	class uint8
	lists uint32
}

// viewLists are the lists of a snapshot view.
type viewLists struct {
	versions  []VersionVerdict
	workloads []WorkloadRef
}

// classes are the classes a mark can hold.
var classes = [...]string{"", Clean, Tainted, Unknown}

// compact drops av's snapshot views for their marks (nothing when a class
// has no mark: the views stay).
func (av *appViews) compact() {
	views := av.view.Snapshots
	if views == nil || len(views) != len(av.snaps) {
		return
	}
	marks := make([]snapMark, len(views))
	var lists []viewLists
	for i, sv := range views {
		class := slices.Index(classes[:], sv.Class)
		if class < 0 {
			return
		}
		if n := len(lists); n == 0 || !slices.Equal(lists[n-1].versions, sv.Versions) || !slices.Equal(lists[n-1].workloads, sv.Workloads) {
			lists = append(lists, viewLists{versions: sv.Versions, workloads: sv.Workloads})
		}
		marks[i] = snapMark{class: uint8(class), lists: uint32(len(lists) - 1)}
	}
	av.marks, av.lists = marks, slices.Clip(lists)
	if av.pooled {
		clear(views) // drop what the views point to
		views = views[:0]
		viewBuffers.Put(&views)
	}
	av.view.Snapshots, av.pooled = nil, false
}

// snapshotView is the view of av.snaps[i].
func (av *appViews) snapshotView(i int) SnapshotView {
	if av.view.Snapshots != nil {
		return av.view.Snapshots[i]
	}
	m := av.marks[i]
	sv := snapshotFacts(av.snaps[i])
	sv.Class = classes[m.class]
	sv.Versions, sv.Workloads = av.lists[m.lists].versions, av.lists[m.lists].workloads
	return sv
}

// materialize builds av's snapshot views from its marks, for a reader of
// the whole view; c compacts them again after the event.
func (c *viewCache) materialize(av *appViews) *AppView {
	if av.view.Snapshots == nil && av.marks != nil {
		views := make([]SnapshotView, len(av.snaps))
		for i := range views {
			views[i] = av.snapshotView(i)
		}
		av.view.Snapshots = views
		c.full = append(c.full, av)
	}
	return &av.view
}

// owners are the workloads named by av's snapshot views (ownersOf).
func (av *appViews) owners() map[WorkloadRef]bool {
	if av.view.Snapshots != nil {
		return ownersOf(av.view.Snapshots)
	}
	owners := map[WorkloadRef]bool{}
	for _, l := range av.lists {
		for _, o := range l.workloads {
			owners[o] = true
		}
	}
	return owners
}

// DropViews forgets what st keeps in memory to apply the next event
// quickly — the applications' views, the fact and per-PVC indexes —, as a
// state read from KV has none: the next event derives everything again.
// The store calls it for namespaces idle for a while, whose views would
// otherwise stay in memory for as long as the namespace does.
func (st *State) DropViews() {
	st.cache, st.byPVCFacts = nil, nil
}

// ViewsKept reports whether st holds derived views (DropViews).
func (st *State) ViewsKept() bool { return st.cache != nil }

// compactViews compacts the views built or read since the last call.
func (st *State) compactViews() {
	c := st.cache
	if c == nil {
		return
	}
	for _, av := range c.full {
		av.compact()
	}
	clear(c.full)
	c.full = c.full[:0]
}

// touchSnapshot marks s changed and every application that ran on it
// dirty.
func (st *State) touchSnapshot(s *Snapshot) {
	st.partChanged(s.PVC)
	if c := st.cache; c != nil {
		c.changed[s] = true
	}
	for _, w := range s.Workloads {
		st.touch(w.App)
	}
}

// refUpload counts upload u of its app (d is 1 or -1): its verdicts change.
func (st *State) refUpload(u *Upload, d int) {
	if c := st.cache; c != nil {
		c.uploaded[u.App] = true
		if d > 0 {
			c.idx.addUpload(u)
		} else {
			c.idx.removeUpload(u)
		}
	}
	st.ref(u.App, d)
}

// remember counts s's workloads and marks their applications dirty;
// forget undoes it, before s changes or goes.
func (st *State) remember(s *Snapshot) { st.refSnapshot(s, 1) }
func (st *State) forget(s *Snapshot)   { st.refSnapshot(s, -1) }

func (st *State) refSnapshot(s *Snapshot, d int) {
	st.partChanged(s.PVC)
	for _, w := range s.Workloads {
		st.ref(w.App, d)
	}
	c := st.cache
	if c == nil {
		return
	}
	c.changed[s] = true
	if !s.Completed {
		return
	}
	c.recheckObservations(s.PVC)
	if len(s.Workloads) == 0 {
		// A sample that nothing runs changes the lineage of whatever ran
		// on the PVC before it (spansOf ends their spans), though it names
		// no application.
		c.touchWriters(s.PVC)
	}
	if d > 0 && c.crossesOK && !c.crosses {
		c.crosses = writtenByOthers(s.Workloads, s.Workloads) ||
			slices.ContainsFunc(c.byPVC[s.PVC], func(o *Snapshot) bool { return writtenByOthers(o.Workloads, s.Workloads) })
	}
	sortedSet(c.byPVC, s.PVC, s, d)
	for i, w := range s.Workloads {
		if !slices.ContainsFunc(s.Workloads[:i], func(o Workload) bool { return o.App == w.App }) {
			sortedSet(c.byApp, w.App, s, d)
		}
	}
	if d > 0 {
		c.indexUsers(s)
	}
}

// indexUsers adds the owners and pods of the workloads of s, a completed
// snapshot, to appsByOwner (and appsByPod, once kept).
func (c *viewCache) indexUsers(s *Snapshot) {
	for _, w := range s.Workloads {
		if w.Owner != nil {
			addApp(c.appsByOwner, w.Owner.Name, w.App)
		}
		if c.appsByPod != nil && w.Pod != "" {
			addApp(c.appsByPod, w.Pod, w.App)
		}
	}
}

// addApp adds app to the list of key in m.
func addApp(m map[string][]string, key, app string) {
	if list := m[key]; !slices.Contains(list, app) {
		m[key] = append(list, app)
	}
}

// sortedSet adds s to (d > 0) or removes it from (d < 0) the list of key,
// kept oldest first.
func sortedSet(m map[string][]*Snapshot, key string, s *Snapshot, d int) {
	list := m[key]
	i, found := slices.BinarySearchFunc(list, s, snapshotLess)
	switch {
	case d > 0 && !found:
		m[key] = slices.Insert(list, i, s)
	case d < 0 && found:
		if list = slices.Delete(list, i, i+1); len(list) == 0 {
			delete(m, key)
		} else {
			m[key] = list
		}
	}
}

// ref counts a reference to app (d is 1 or -1) and marks it dirty.
func (st *State) ref(app string, d int) {
	c := st.cache
	if c == nil {
		return
	}
	if !c.all {
		c.dirty[app] = true
	}
	n := c.refs[app] + d
	switch {
	case n <= 0:
		delete(c.refs, app)
		c.names = nil
	case n == d:
		c.refs[app] = n
		c.names = nil
	default:
		c.refs[app] = n
	}
}

// touchAll marks every application dirty: lineage facts (observations,
// restores) and operator decisions reach across applications sharing a
// volume.
func (st *State) touchAll() {
	if c := st.cache; c != nil {
		c.all, c.crossesOK = true, false
		clear(c.dirty)
	}
}

// touchObservation marks dirty the applications whose views read a new
// observation o: those it names, and those whose lineage holds its PVC
// (they ran on it: a snapshot, or an earlier observation). Where lineages
// cross applications (a restore, a shared PVC; o may make one), derive
// marks every application.
func (st *State) touchObservation(o *Observation) {
	c := st.cache
	if c == nil {
		return
	}
	c.idx.addObservation(o)
	c.recheckObservations(o.PVC)
	if c.crossesOK && !c.crosses {
		// Whether o makes its PVC one that several applications wrote to,
		// without going over the namespace's other PVCs.
		c.crosses = slices.ContainsFunc(c.byPVC[o.PVC], func(s *Snapshot) bool { return writtenByOthers(s.Workloads, o.Workloads) }) ||
			slices.ContainsFunc(c.idx.obsByPVC[o.PVC], func(x *Observation) bool { return writtenByOthers(x.Workloads, o.Workloads) })
	}
	if c.all {
		return
	}
	for _, app := range appsOfObservation(o) {
		c.dirty[app] = true
	}
	c.touchWriters(o.PVC)
}

// touchWriters marks dirty the applications whose lineage holds pvc: those
// a snapshot or an observation of it names.
func (c *viewCache) touchWriters(pvc string) {
	if c.all {
		return
	}
	for _, s := range c.byPVC[pvc] {
		for _, w := range s.Workloads {
			c.dirty[w.App] = true
		}
	}
	for _, other := range c.idx.obsByPVC[pvc] {
		for _, w := range other.Workloads {
			c.dirty[w.App] = true
		}
	}
}

// recheckObservations notes that pruneObservations should look at pvc
// again.
func (c *viewCache) recheckObservations(pvc string) {
	if c.obsRecheck == nil {
		c.obsRecheck = map[string]bool{}
	}
	c.obsRecheck[pvc] = true
}

// observationsToRecheck are, sorted, the PVCs pruneObservations should look
// at after an event: those whose snapshots or observations changed, or
// every one (nil) when st has no view cache to say which.
func (st *State) observationsToRecheck() []string {
	c := st.cache
	if c == nil {
		return nil
	}
	pvcs := slices.Sorted(maps.Keys(c.obsRecheck))
	clear(c.obsRecheck)
	if pvcs == nil {
		pvcs = []string{}
	}
	return pvcs
}

// touchCerts marks the certificate of secret changed. An application's
// view reads only the certificates' users (the Secrets its workloads
// mount): touchCertUsers.
func (st *State) touchCerts(secret string) {
	st.certsVersion++
	c := st.cache
	if c == nil {
		return
	}
	c.certsOK = false
	if c.certsDue == nil {
		c.certsDue = map[string]bool{}
	}
	c.certsDue[secret] = true
	c.idx.certChanged(st, secret)
}

// touchCertUsers notes that the users of secret grew: the next derivation
// marks dirty the applications they now name (usersGrew).
func (st *State) touchCertUsers(secret string) {
	if c := st.cache; c != nil && !c.all {
		c.usersChanged = append(c.usersChanged, secret)
	}
}

// usersGrew marks dirty each application that the users of secret name
// and whose view does not list secret yet (users only grow, so a view
// that lists it stays right).
//
// Only the applications the users may name are looked at: those named like
// a workload of the users, those with an owner named like one, those with
// one of their pods (appsByOwner, appsByPod).
func (c *viewCache) usersGrew(st *State, secret string) {
	cert := st.Certs[secret]
	if cert == nil || c.all {
		return
	}
	check := func(app string) {
		av := c.apps[app]
		if av == nil || c.dirty[app] || slices.Contains(av.view.Secrets, secret) {
			return
		}
		if usedBy(cert.Users, app, av.owners(), podsOf(app, c.byApp[app])) {
			c.dirty[app] = true
		}
	}
	for _, w := range cert.Users.Workloads {
		check(w.Name)
		for _, app := range c.appsByOwner[w.Name] {
			check(app)
		}
	}
	if len(cert.Users.Pods) > 0 && c.appsByPod == nil {
		c.appsByPod = map[string][]string{}
		for _, list := range c.byApp {
			for _, s := range list {
				c.indexUsers(s)
			}
		}
	}
	for _, p := range cert.Users.Pods {
		for _, app := range c.appsByPod[p] {
			check(app)
		}
	}
}

// certList is every certificate's views in Secret order (certViews).
func (c *viewCache) certList() []CertView {
	if !c.certsOK {
		var out []CertView
		for _, name := range ordered.Keys(c.certsBy) {
			out = append(out, c.certsBy[name]...)
		}
		c.certs, c.certsOK = out, true
	}
	return c.certs
}

// deriveCerts brings certsBy up to date: every Secret's views when none
// are kept, else those of the Secrets changed since (certsDue), noted in
// certsFresh.
func (c *viewCache) deriveCerts(r Rules, st *State) {
	if c.certsBy == nil {
		c.certsBy = make(map[string][]CertView, len(st.Certs))
		for name, cert := range st.Certs {
			c.certsBy[name] = certViewsOf(r, name, cert)
		}
		c.mountedPods = mountedByPods(st)
		c.certsOK = false
		clear(c.certsDue)
		return
	}
	for secret := range c.certsDue {
		cert := st.Certs[secret]
		if cert == nil {
			continue
		}
		c.certsBy[secret] = certViewsOf(r, secret, cert)
		c.certsFresh = append(c.certsFresh, secret)
		c.mountedPods = c.mountedPods || len(cert.Users.Pods) > 0
	}
	clear(c.certsDue)
}

// freshCerts are the views of the Secrets in certsFresh, in Secret order,
// and forgets them.
func (c *viewCache) freshCerts() []CertView {
	slices.Sort(c.certsFresh)
	var out []CertView
	for i, name := range c.certsFresh {
		if i == 0 || c.certsFresh[i-1] != name {
			out = append(out, c.certsBy[name]...)
		}
	}
	c.certsFresh = c.certsFresh[:0]
	return out
}

// derive is Derive, re-deriving only what changed since the last call.
// The views it returns share their applications' parts with the cache:
// they are read-only.
func (st *State) derive(r Rules) View {
	st.deriveChanges(r)
	c := st.cache
	views := make([]*AppView, len(c.names))
	pins := make([]*appPins, len(c.names))
	for i, app := range c.names {
		views[i], pins[i] = c.materialize(c.apps[app]), c.apps[app].pins
	}
	// The caller holds these views: their arrays are not given back.
	for _, av := range c.full {
		av.pooled = false
	}
	return assemble(st.Namespace, views, pins, c.certList())
}

// changes is what one derivation changed, for decide: the applications
// re-derived (their views, in name order) or gone, the snapshots whose pin
// may have changed, the pins the whole view calls for (assemble's, kept in
// the cache: read-only) and the views of the certificates that changed
// (in Secret order; every certificate's with all). all says that
// everything was derived afresh: decide then looks at the whole ledger.
type changes struct {
	all      bool
	apps     []*AppView
	appNames map[string]bool // re-derived or gone
	pinNames []string
	pins     map[string]Pin
	certs    []CertView
}

// prepareCache returns st's view cache for r (a new one, everything
// dirty, when there is none or the rules changed), with its application
// names, certificates and lineage crossing up to date.
func (st *State) prepareCache(r Rules) *viewCache {
	c := st.cache
	if c == nil || !c.rules.equal(r) {
		c = &viewCache{rules: r.clone(), apps: map[string]*appViews{}, dirty: map[string]bool{}, all: true, refs: map[string]int{},
			changed: map[*Snapshot]bool{}, uploaded: map[string]bool{}, pruneAll: true}
		for _, s := range st.Snapshots {
			// A state read from KV shares its workload lists from here on.
			s.Workloads = st.shareWorkloads(s.Workloads)
			for _, w := range s.Workloads {
				c.refs[w.App]++
			}
		}
		for _, u := range st.Uploads {
			c.refs[u.App]++
		}
		c.byPVC, c.byApp = completedByPVC(st), timelines(st)
		c.appsByOwner = map[string][]string{}
		for _, list := range c.byApp {
			for _, s := range list {
				c.indexUsers(s)
			}
		}
		c.idx = newFactIndex(st)
		st.cache = c
	}
	if c.names == nil {
		c.names = ordered.Keys(c.refs)
	}
	c.deriveCerts(r, st)
	for _, secret := range c.usersChanged {
		c.usersGrew(st, secret)
	}
	c.usersChanged = c.usersChanged[:0]
	if !c.crossesOK {
		c.crosses, c.crossesOK = lineageCrossesApps(st), true
	}
	if len(c.dirty) > 0 && !c.all && c.crosses {
		// An application's view reads other applications' snapshots and
		// verdicts through its lineage: a change of one may change any.
		c.all = true
		clear(c.dirty)
	}
	return c
}

// deriveChanges re-derives the applications whose facts changed since the
// last call and keeps the namespace's pins up to date for the snapshots
// their pins name, so an event costs what its applications cost, not what
// the namespace's do.
func (st *State) deriveChanges(r Rules) changes {
	c := st.prepareCache(r)
	names := c.names
	ch := changes{all: c.all || c.pins == nil, appNames: map[string]bool{}}
	touched := map[string]bool{}
	if len(c.apps) > len(names) {
		for app, av := range c.apps {
			if _, found := slices.BinarySearch(names, app); !found {
				c.unpinApp(app, av.pins, touched)
				delete(c.apps, app)
				ch.appNames[app] = true
			}
		}
	}
	pods := c.mountedPods
	// The applications to derive: every one, or the dirty ones that exist,
	// in name order (not going over the namespace's other applications).
	todo := names
	if !c.all {
		todo = todo[:0:0]
		for app := range c.dirty {
			if _, ok := c.refs[app]; ok {
				todo = append(todo, app)
			}
		}
		slices.Sort(todo)
	}
	for _, app := range todo {
		av := c.apps[app]
		if av == nil || c.all || c.dirty[app] {
			if av != nil {
				c.unpinApp(app, av.pins, touched)
			}
			ru := reuse{prev: av, changed: c.changed, pods: pods}
			if av == nil || c.uploaded[app] {
				// Every verdict may have changed.
				ru.prev = nil
				ru.verdicts = newVerdicts(r, st, app)
			} else {
				ru.verdicts = av.verdicts
			}
			timeline := c.byApp[app]
			view := deriveApp(r, st, app, timeline, ru)
			ru.verdicts.release()
			var snaps []*Snapshot
			if av != nil {
				snaps = av.snaps[:0] // read by deriveApp until now
			}
			av = &appViews{view: view, snaps: append(snaps, timeline...), verdicts: ru.verdicts, pooled: true}
			c.full = append(c.full, av)
			av.pins = pinsOf(&av.view)
			c.apps[app] = av
			c.pinApp(app, av.pins, touched)
			ch.apps = append(ch.apps, &av.view)
			ch.appNames[app] = true
		}
	}
	if c.pins == nil {
		c.pins = map[string]Pin{}
	}
	for name := range touched {
		if p, ok := c.pinOf(name); ok {
			c.pins[name] = p
		} else {
			delete(c.pins, name)
		}
	}
	ch.pinNames = ordered.Keys(touched)
	ch.pins = c.pins
	if ch.all {
		// decide's only; the list is made again when a whole view is read
		// (derive), not kept beside certsBy.
		ch.certs = c.certList()
		c.certs, c.certsOK = nil, false
		c.certsFresh = c.certsFresh[:0]
	} else {
		ch.certs = c.freshCerts()
	}
	c.all = false
	clear(c.dirty)
	clear(c.changed)
	clear(c.uploaded)
	return ch
}

// pinApp records the pins app's view calls for (ps) under the snapshots
// they name, and unpinApp forgets them; both note the names in touched.
func (c *viewCache) pinApp(app string, ps *appPins, touched map[string]bool) {
	if c.pinApps == nil {
		c.pinApps = map[string][]string{}
	}
	for _, list := range [][]namedPin{ps.known, ps.restore} {
		for _, np := range list {
			c.pinApps[np.name], _ = setAdd(c.pinApps[np.name], app)
			touched[np.name] = true
		}
	}
}

func (c *viewCache) unpinApp(app string, ps *appPins, touched map[string]bool) {
	for _, list := range [][]namedPin{ps.known, ps.restore} {
		for _, np := range list {
			if apps := setRemove(c.pinApps[np.name], app); len(apps) > 0 {
				c.pinApps[np.name] = apps
			} else {
				delete(c.pinApps, np.name)
			}
			touched[np.name] = true
		}
	}
}

// pinOf is the pin of snapshot name as assemble chooses it over the
// applications whose views pin it, in name order: the first known-good
// pin, unless a restore point of an incident (the smallest id) wins.
func (c *viewCache) pinOf(name string) (Pin, bool) {
	var out Pin
	found := false
	for _, app := range c.pinApps[name] {
		ps := c.apps[app].pins
		for _, kp := range ps.known {
			if kp.name == name && !found {
				out, found = kp.pin, true
			}
		}
		for _, rp := range ps.restore {
			if rp.name == name && (!found || out.Incident == "" || rp.pin.Incident < out.Incident) {
				out, found = rp.pin, true
			}
		}
	}
	return out, found
}

func (r Rules) equal(o Rules) bool {
	return r.Threshold == o.Threshold && r.UnknownIsClean == o.UnknownIsClean && r.KeepKnownGood == o.KeepKnownGood &&
		slices.Equal(r.SecretCWEs, o.SecretCWEs) && slices.Equal(r.SecretRules, o.SecretRules) && slices.Equal(r.SecretTags, o.SecretTags) &&
		r.RotationThreshold == o.RotationThreshold && r.RenewalMargin == o.RenewalMargin && r.History == o.History &&
		maps.EqualFunc(r.Repositories, o.Repositories, slices.Equal)
}

func (r Rules) clone() Rules {
	r.SecretCWEs, r.SecretRules, r.SecretTags = slices.Clone(r.SecretCWEs), slices.Clone(r.SecretRules), slices.Clone(r.SecretTags)
	if r.Repositories != nil {
		repos := make(map[string][]RepoTarget, len(r.Repositories))
		for k, v := range r.Repositories {
			repos[k] = slices.Clone(v)
		}
		r.Repositories = repos
	}
	return r
}

// completedByPVC groups st's completed snapshots by PVC, oldest first.
func completedByPVC(st *State) map[string][]*Snapshot {
	byPVC := map[string][]*Snapshot{}
	for _, s := range st.Snapshots {
		if s.Completed {
			byPVC[s.PVC] = append(byPVC[s.PVC], s)
		}
	}
	for _, list := range byPVC {
		slices.SortFunc(list, snapshotLess)
	}
	return byPVC
}

// timelines lists, per application, the completed snapshots it ran on,
// oldest first.
func timelines(st *State) map[string][]*Snapshot {
	byApp := map[string][]*Snapshot{}
	for _, s := range st.Snapshots {
		if !s.Completed {
			continue
		}
		for i, w := range s.Workloads {
			if !slices.ContainsFunc(s.Workloads[:i], func(o Workload) bool { return o.App == w.App }) {
				byApp[w.App] = append(byApp[w.App], s)
			}
		}
	}
	for _, list := range byApp {
		slices.SortFunc(list, snapshotLess)
	}
	return byApp
}

// reuse tells deriveApp which snapshot views it may take over from the
// application's previous view.
type reuse struct {
	prev    *appViews
	changed map[*Snapshot]bool
	// verdicts, when set, are the app's verdicts to use.
	verdicts *verdicts
	// pods is false when no certificate names the pods that mount it, so
	// the app's pods need not be collected.
	pods bool
}

// lineageCrossesApps reports whether the lineage of a PVC may hold the
// versions of several applications, so that one application's view reads
// another's verdicts: a restore (it inherits the restored snapshot's
// lineage, whoever wrote it), or a PVC that several applications wrote to.
func lineageCrossesApps(st *State) bool {
	if len(st.Restores) > 0 {
		return true
	}
	writer := map[string]string{}
	shared := func(pvc string, ws []Workload) bool {
		for _, w := range ws {
			if app, ok := writer[pvc]; ok && app != w.App {
				return true
			}
			writer[pvc] = w.App
		}
		return false
	}
	for _, s := range st.Snapshots {
		if s.Completed && shared(s.PVC, s.Workloads) {
			return true
		}
	}
	for _, o := range st.Observations {
		if shared(o.PVC, o.Workloads) {
			return true
		}
	}
	return false
}

// writtenByOthers reports whether a and b, the workloads of two samples of
// one PVC, name more than one application between them.
func writtenByOthers(a, b []Workload) bool {
	for _, x := range a {
		for _, y := range b {
			if x.App != y.App {
				return true
			}
		}
	}
	return false
}

func mountedByPods(st *State) bool {
	for _, c := range st.Certs {
		if len(c.Users.Pods) > 0 {
			return true
		}
	}
	return false
}
