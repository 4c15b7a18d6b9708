package model

import (
	"maps"
	"slices"
	"strings"
)

// pruneObservations drops the workload observations that can no longer
// change anything: without this rule a PVC's observations pile up for as
// long as it lives (#14), while its snapshots are kept only History deep.
//
// An observation o of a PVC is dropped when all of these hold:
//
//  1. it is beyond the history: at least History completed snapshots of
//     the PVC are newer than it (an event later than that already meets a
//     state that has forgotten what it needed: the README's known limit of
//     order independence);
//  2. it repeats an earlier observation o' of the PVC that is kept, and
//     every sample (snapshot or observation) between the two shows the
//     same applications and versions — so o opens and ends no span of the
//     lineage (spansOf), and o' stays to stand for the run whatever
//     snapshots of it are pruned later;
//  3. no restore into the PVC began between o' and o (o would start the
//     new epoch's spans);
//  4. the Secrets o says each application mounts are among those o' says
//     (the key exposure rule reads their union: secretsOf).
//
// So the lineage, the PVCs an application wrote to and the Secrets it
// mounts are the same with or without o, and Derive gives the same view.
// A run of identical observations keeps its first one. pvcs are the PVCs to
// look at (nil: every PVC with observations).
func pruneObservations(r Rules, st *State, pvcs []string) {
	if len(st.Observations) == 0 {
		return
	}
	if pvcs == nil {
		set := map[string]bool{}
		for _, o := range st.Observations {
			set[o.PVC] = true
		}
		pvcs = slices.Sorted(maps.Keys(set))
	}
	byPVC := pvcSnapshots(st)
	for _, pvc := range pvcs {
		for _, o := range redundantObservations(r, st, pvc, byPVC[pvc]) {
			st.dropObservation(o)
		}
	}
}

// redundantObservations are the observations of pvc that
// pruneObservations drops; snaps are its completed snapshots, oldest first.
func redundantObservations(r Rules, st *State, pvc string, snaps []*Snapshot) []*Observation {
	observed := st.observationsOn(pvc)
	if len(observed) < 2 || len(snaps) < r.History {
		return nil
	}
	// Only observations older than the History-th newest snapshot can go.
	horizon := snaps[len(snaps)-r.History].Time
	// The samples in lineages.samples' order; obs is nil for a snapshot.
	type entry struct {
		sample
		obs *Observation
	}
	samples := make([]entry, 0, len(snaps)+len(observed))
	for _, s := range snaps {
		samples = append(samples, entry{sample: sample{time: s.Time, eventID: s.EventID, workloads: s.Workloads}})
	}
	for _, o := range observed {
		samples = append(samples, entry{sample: sample{time: o.Time, eventID: o.EventID, workloads: o.Workloads}, obs: o})
	}
	slices.SortFunc(samples, func(a, b entry) int {
		if c := a.time.Compare(b.time); c != 0 {
			return c
		}
		return strings.Compare(a.eventID, b.eventID)
	})
	var drop []*Observation
	var kept *Observation // the newest kept observation of the run, o'
	var keptKey, key string
	var last []Workload
	for _, sm := range samples {
		if !sm.time.Before(horizon) {
			break
		}
		if !sameList(sm.workloads, last) { // snapshots share equal lists (shareWorkloads)
			key = versionSetKey(sm.workloads)
		}
		last = sm.workloads
		o := sm.obs
		if o == nil {
			// A snapshot: a different one ends the run.
			if kept != nil && key != keptKey {
				kept = nil
			}
			continue
		}
		if kept != nil && key == keptKey && !restoredBetween(st, pvc, kept, o) && secretsWithin(o.Secrets, kept.Secrets) {
			drop = append(drop, o)
			continue
		}
		kept, keptKey = o, key
	}
	return drop
}

// versionSetKey names what a sample shows for the lineage: the
// applications and, per application, its versions.
func versionSetKey(ws []Workload) string {
	var parts []string
	for _, w := range ws {
		parts = append(parts, w.App)
		for _, v := range w.Versions {
			parts = append(parts, w.App+"\x00"+v)
		}
	}
	slices.Sort(parts)
	return strings.Join(slices.Compact(parts), "\x01")
}

// restoredBetween reports whether a restore into pvc began after a and at
// or before b: then b is in a later epoch than a.
func restoredBetween(st *State, pvc string, a, b *Observation) bool {
	for _, rs := range st.Restores {
		if rs.PVC == pvc && rs.Time.After(a.Time) && !rs.Time.After(b.Time) {
			return true
		}
	}
	return false
}

// secretsWithin reports whether every Secret of sub is in super, per
// application.
func secretsWithin(sub, super map[string][]string) bool {
	for app, secrets := range sub {
		for _, s := range secrets {
			if _, found := slices.BinarySearch(super[app], s); !found {
				return false
			}
		}
	}
	return true
}

// dropObservation removes o from st and its indexes; its PVC's part is
// written again.
func (st *State) dropObservation(o *Observation) {
	delete(st.Observations, o.EventID)
	st.partChanged(o.PVC)
	if x := st.byPVCFacts; x != nil {
		unsetIn(x.observations, o.PVC, o.EventID)
	}
	if c := st.cache; c != nil {
		c.idx.removeObservation(o)
	}
}
