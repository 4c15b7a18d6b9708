package model

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/stateguard/stateguard/services/correlator/internal/ordered"
)

// Apply records the fact in in, re-derives the namespace's view and returns
// the decisions to publish, in the order to publish them. It mutates st.
// changed is false when the fact was already known (a duplicate): then there
// is nothing to store or publish.
//
// Facts are sets, so the facts after any permutation of the same events
// (with or without duplicates) are the same; the Ledger is brought to what
// those facts call for after every call, so it ends the same too.
func Apply(r Rules, st *State, in Input) (decisions []Decision, changed bool, err error) {
	if in.Namespace != st.Namespace {
		return nil, false, fmt.Errorf("apply: event %s for namespace %q applied to %q", in.EventID, in.Namespace, st.Namespace)
	}
	if !merge(st, in) {
		return nil, false, nil
	}
	prune(r, st, in)
	pruneObservations(r, st, st.observationsToRecheck())
	decisions = decide(r, st, st.deriveChanges(r))
	st.compactViews()
	return decisions, true, nil
}

// merge adds the fact to st and reports whether st changed. Where two events
// claim the same identity with different content, the one with the smaller
// event id wins, whatever the order they came in.
func merge(st *State, in Input) bool {
	switch {
	case in.Upload != nil:
		u := in.Upload
		if st.Uploads == nil {
			st.Uploads = map[string]*Upload{}
		}
		if old, ok := st.Uploads[u.ID]; ok && old.EventID <= u.EventID {
			return false
		}
		if superseded(st, u) {
			return false
		}
		if old, ok := st.Uploads[u.ID]; ok {
			st.refUpload(old, -1)
		}
		st.Uploads[u.ID] = u
		st.refUpload(u, 1)
		st.uploadChanged(u.ID)
		return true
	case in.Snapshot != nil:
		s := snapshotFor(st, in.Snapshot.Name, in.Snapshot.PVC)
		if s.Completed && s.EventID <= in.EventID {
			return false
		}
		n := in.Snapshot
		st.forget(s)
		from := s.PVC
		s.PVC, s.EventID, s.Time, s.Completed, s.RestoreSize, s.Workloads = st.shareString(n.PVC), in.EventID, n.Time, true, st.shareString(n.RestoreSize), st.shareWorkloads(n.Workloads)
		s.Encryption, s.EncryptionEvidence = st.shareString(n.Encryption), n.EncryptionEvidence
		if from != s.PVC {
			st.indexSnapshot(s, from, false)
		}
		st.remember(s)
		return true
	case in.SnapshotFailed != nil:
		s := snapshotFor(st, in.SnapshotFailed.Name, in.SnapshotFailed.PVC)
		var added bool
		s.Failed, added = setAdd(s.Failed, in.EventID)
		if at := in.SnapshotFailed.Time; !s.Completed && !at.IsZero() && (s.Time.IsZero() || at.Before(s.Time)) {
			// A snapshot known only by its failure is timed by it (the
			// earliest, whatever the order), so that prune can forget it
			// (forgettableFailures); its completion sets its own time.
			s.Time, added = at, true
		}
		if added {
			st.touchSnapshot(s)
		}
		return added
	case in.Verified != nil:
		s := snapshotFor(st, in.Verified.Name, in.Verified.PVC)
		if s.Verifications == nil {
			s.Verifications = map[string]bool{}
		}
		if _, ok := s.Verifications[in.EventID]; ok {
			return false
		}
		s.Verifications[in.EventID] = in.Verified.Passed
		if at := in.Verified.Time; !s.Completed && !at.IsZero() && (s.Time.IsZero() || at.Before(s.Time)) {
			// A snapshot known only by its restore tests is timed by the
			// earliest (it was taken before), so that prune can forget a
			// test of a snapshot forgotten already (forgettableFailures).
			s.Time = at
		}
		st.touchSnapshot(s)
		return true
	case in.Expiring != nil:
		e := in.Expiring
		c := certFor(st, e.Secret)
		obs := c.Observations[e.Serial]
		if obs == nil {
			obs = map[string]*CertObservation{}
			c.Observations[e.Serial] = obs
		}
		changed, users := false, false
		if _, ok := obs[in.EventID]; !ok {
			o := e.Observation
			obs[in.EventID] = &o
			changed = true
		}
		for _, w := range e.Users.Workloads {
			if !slices.Contains(c.Users.Workloads, w) {
				c.Users.Workloads = append(c.Users.Workloads, w)
				users = true
			}
		}
		slices.SortFunc(c.Users.Workloads, func(a, b WorkloadRef) int { return compareRef(a, b) })
		for _, p := range e.Users.Pods {
			var added bool
			c.Users.Pods, added = setAdd(c.Users.Pods, p)
			users = users || added
		}
		if changed || users {
			st.touchCerts(e.Secret)
		}
		if users {
			st.touchCertUsers(e.Secret)
		}
		return changed || users
	case in.Rotated != nil:
		c := certFor(st, in.Rotated.Secret)
		if c.Rotated == nil {
			c.Rotated = map[string]string{}
		}
		if old, ok := c.Rotated[in.Rotated.OldSerial]; ok && old <= in.EventID {
			return false
		}
		c.Rotated[in.Rotated.OldSerial] = in.EventID
		if c.Rotations == nil {
			c.Rotations = map[string]RotationRecord{}
		}
		c.Rotations[in.Rotated.OldSerial] = in.Rotated.Done
		st.touchCerts(in.Rotated.Secret)
		return true
	case in.Observation != nil:
		o := in.Observation
		if st.Observations == nil {
			st.Observations = map[string]*Observation{}
		}
		if _, ok := st.Observations[o.EventID]; ok {
			return false
		}
		st.Observations[o.EventID] = o
		st.indexObservation(o)
		st.partChanged(o.PVC)
		st.touchObservation(o)
		return true
	case in.Restore != nil:
		rs := in.Restore
		if st.Restores == nil {
			st.Restores = map[string]*Restore{}
		}
		old, ok := st.Restores[rs.ID]
		if ok && old.EventID <= rs.EventID {
			return false
		}
		if ok {
			st.partChanged(old.PVC)
		}
		st.Restores[rs.ID] = rs
		if ok {
			st.indexRestore(rs, old)
		} else {
			st.indexRestore(rs, nil)
		}
		st.partChanged(rs.PVC)
		st.touchAll()
		return true
	case in.Resolved != nil:
		if st.Resolutions == nil {
			st.Resolutions = map[string]*Resolution{}
		}
		res := in.Resolved.Resolution
		if old, ok := st.Resolutions[in.Resolved.Incident]; ok && old.EventID <= res.EventID {
			return false
		}
		st.Resolutions[in.Resolved.Incident] = &res
		st.touchAll()
		return true
	case in.Dismissal != nil:
		d := in.Dismissal
		if st.Dismissals == nil {
			st.Dismissals = map[string]*Dismissal{}
		}
		k := dismissalKey(d.App, d.RuleID, d.Fingerprint)
		if old, ok := st.Dismissals[k]; ok && old.EventID <= d.EventID {
			return false
		}
		st.Dismissals[k] = d
		if c := st.cache; c != nil {
			c.uploaded[d.App] = true
		}
		st.touchAll()
		return true
	case in.RotationFailed != nil:
		c := certFor(st, in.RotationFailed.Secret)
		if c.Failures == nil {
			c.Failures = map[string]string{}
		}
		if _, ok := c.Failures[in.EventID]; ok {
			return false
		}
		c.Failures[in.EventID] = in.RotationFailed.Reason
		st.touchCerts(in.RotationFailed.Secret)
		return true
	}
	return false
}

func snapshotFor(st *State, name, pvc string) *Snapshot {
	if st.Snapshots == nil {
		st.Snapshots = map[string]*Snapshot{}
	}
	s := st.Snapshots[name]
	if s == nil {
		s = &Snapshot{Name: name, PVC: st.shareString(pvc)}
		st.Snapshots[name] = s
		st.indexSnapshot(s, "", true)
		if st.namesOK {
			st.names, _ = setAdd(st.names, name)
		}
	}
	if s.PVC == "" && pvc != "" {
		st.forget(s)
		s.PVC = st.shareString(pvc)
		st.indexSnapshot(s, "", false)
		st.remember(s)
	}
	return s
}

func certFor(st *State, secret string) *Cert {
	if st.Certs == nil {
		st.Certs = map[string]*Cert{}
	}
	c := st.Certs[secret]
	if c == nil {
		c = &Cert{Secret: secret, Observations: map[string]map[string]*CertObservation{}}
		st.Certs[secret] = c
	}
	return c
}

// newer orders uploads: the later received wins, then the greater id.
func newer(a, b *Upload) bool {
	if c := a.ReceivedAt.Compare(b.ReceivedAt); c != 0 {
		return c > 0
	}
	return a.ID > b.ID
}

// superseded reports whether every (key, category) u covers already has a
// newer upload: then u can never decide a verdict.
func superseded(st *State, u *Upload) bool {
	for _, k := range u.Keys {
		beaten := false
		for _, o := range st.uploadsOf(u.App) {
			if o.App == u.App && o.Category == u.Category && o.ID != u.ID && slices.Contains(o.Keys, k) && newer(o, u) {
				beaten = true
				break
			}
		}
		if !beaten {
			return false
		}
	}
	return true
}

// prune drops facts that can no longer matter: uploads that are not the
// latest of any (app, version, category), and completed snapshots beyond
// the History newest of their PVC unless pinned, a lineage boundary of
// their PVC (lineageBoundaries) or restored from (restoredSnapshots) — an
// incoming snapshot too, so a late one that is a boundary stays. Only a
// new upload can supersede others, so uploads are looked at only when one
// came in; only the PVCs whose facts or pins changed since their last look
// are looked at (pvcsToPrune: the answer for the others is the same).
func prune(r Rules, st *State, in Input) {
	if in.Upload != nil {
		pruneUploads(st, in.Upload.App)
	}
	byPVC := pvcSnapshots(st)
	pinned := func(name string) bool { _, ok := st.Ledger.Pinned[name]; return ok }
	var restored map[string]bool
	var drop []*Snapshot
	for _, pvc := range pvcsToPrune(st, byPVC, in) {
		list := byPVC[pvc]
		if names := st.pvcIndex().snapshots[pvc]; len(names) > len(list) {
			// Some of pvc's snapshots never completed.
			drop = append(drop, forgettableFailures(st.incomplete(names), list, r.History)...)
		}
		if len(forgettable(list, r.History, pinned, func(*Snapshot) bool { return false })) == 0 {
			continue // nothing to forget whatever the boundaries
		}
		if restored == nil {
			restored = restoredSnapshots(st.Restores)
		}
		keep := lineageBoundaries(boundaryPool.Get().(map[*Snapshot]bool), list, st.observationsOn(pvc), restoresInto(st.Restores, pvc), r.KeepKnownGood+1)
		drop = append(drop, forgettable(list, r.History, pinned, func(s *Snapshot) bool { return keep[s] || restored[s.Name] })...)
		clear(keep)
		boundaryPool.Put(keep)
	}
	for _, s := range drop {
		st.forget(s)
		st.unindexSnapshot(s)
		delete(st.Snapshots, s.Name)
		if st.namesOK {
			st.names = setRemove(st.names, s.Name)
		}
		delete(st.Journal.PinGeneration, s.Name) // not pinned, gone for good
	}
	if c := st.cache; c != nil {
		for _, s := range drop {
			delete(c.pruneDue, s.PVC) // just looked at: what is left stays
		}
	}
}

// boundaryPool holds the maps prune collects a PVC's lineage boundaries in.
var boundaryPool = sync.Pool{New: func() any { return map[*Snapshot]bool{} }}

// pvcsToPrune are the PVCs prune looks at, sorted: with a view cache those
// whose facts changed (partChanged) or whose snapshots were unpinned
// (decide) since the last look, or every one after a restore (it keeps the
// snapshot it names, on another PVC maybe) or when the cache is new;
// without a cache, every one.
func pvcsToPrune(st *State, byPVC map[string][]*Snapshot, in Input) []string {
	c := st.cache
	if c == nil || c.pruneAll || in.Restore != nil {
		if c != nil {
			c.pruneAll = false
			clear(c.pruneDue)
		}
		return ordered.Keys(byPVC)
	}
	out := ordered.Keys(c.pruneDue)
	clear(c.pruneDue)
	return out
}

// restoredSnapshots are the names of the snapshots restores restored.
func restoredSnapshots(restores map[string]*Restore) map[string]bool {
	out := make(map[string]bool, len(restores))
	for _, r := range restores {
		out[r.Snapshot] = true
	}
	return out
}

// restoresInto are the times restores into pvc began (each begins an
// epoch of its lineage).
func restoresInto(restores map[string]*Restore, pvc string) []time.Time {
	var out []time.Time
	for _, r := range restores {
		if r.PVC == pvc {
			out = append(out, r.Time)
		}
	}
	return out
}

// pruneUploads drops app's uploads that are the newest of none of their
// (app, category, version key), in one pass (checking each upload against
// all the others was quadratic in the versions an app ever had). Only an
// upload of app can supersede one of app's, so the others are not looked at.
func pruneUploads(st *State, app string) {
	type slot struct{ app, category, key string }
	mine := st.uploadsOf(app)
	newest := make(map[slot]*Upload, len(mine))
	for _, u := range mine {
		for _, k := range u.Keys {
			sl := slot{u.App, u.Category, k}
			if o := newest[sl]; o == nil || newer(u, o) {
				newest[sl] = u
			}
		}
	}
	for _, u := range mine {
		if !slices.ContainsFunc(u.Keys, func(k string) bool { return newest[slot{u.App, u.Category, k}] == u }) {
			delete(st.Uploads, u.ID)
			st.refUpload(u, -1)
			st.uploadChanged(u.ID)
		}
	}
}
