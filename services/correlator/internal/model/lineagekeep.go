package model

import (
	"cmp"
	"slices"
	"strings"
	"time"
)

// What prune keeps of a PVC's snapshots beyond the `history` newest: its
// lineage boundaries, so that the pins and incidents do not depend on the
// order the events came in, however late one comes. Every rule that reads
// snapshots reads only these (or pinned ones, or the newest):
//
//   - a span starts at the first sample that shows its version and ends at
//     the first later one without it (spansOf): samples whose versions are
//     those of the sample before them change no span, so only the first
//     sample of each new set of versions matters — the incident's start and
//     id (incidentID: its version and start) are read from it;
//   - classes only worsen along an epoch (clean, unknown, tainted: more
//     spans), so a restore point or a known-good snapshot is the newest
//     clean, ready one before some set of versions changed (a version that
//     is not clean started, an epoch ended), or among the newest: the
//     `keep` newest ready snapshots of each application before each change,
//     plus one spare for a failure or a failed restore test that comes
//     later and makes one of them unready, and the unready ones between
//     them (a snapshot forgotten with its failure would look ready if its
//     completion came again);
//   - a restore inherits the lineage of the snapshot it restored (lineages
//     .inherited): that snapshot; and the versions of the newest sample
//     before it go on from the restore's time (runningAtRestore): the
//     newest remembered sample before it shows the same versions, so a
//     restore that comes late needs no sample forgotten.
//
// The state grows with the version changes of a PVC, not with its
// snapshots. What it does not cover is in the README's "Order
// independence beyond the history".

// lineageBoundaries are the snapshots of one PVC that must be kept however
// old: the first sample of each set of versions (the first of the PVC and
// the first of each epoch — restores is when each restore into it began —
// included), and, at each such change and after the newest sample, the
// keep newest ready snapshots of each application that ran on it. snaps
// are the PVC's completed snapshots, observed its observations. The first
// sample of an epoch is no longer read by runningAtRestore or
// restoredPoint, but it stays: without it the in-order decisions of 38 of
// 2,000 long-run scenarios changed, most (restores without snapshot_time)
// away from those of a history that forgets nothing (README, "Order
// independence beyond the history").
// They are added to out, which the caller may reuse (prune does, through
// boundaryPool: the map and the rings were a tenth of the bytes an event
// allocated).
func lineageBoundaries(out map[*Snapshot]bool, snaps []*Snapshot, observed []*Observation, restores []time.Time, keep int) map[*Snapshot]bool {
	buf := samplesOf(snaps, observed)
	defer putSamples(buf)
	samples := *buf
	slices.SortFunc(restores, time.Time.Compare)
	// Per app, its newest snapshots down to the keep-th newest ready one,
	// oldest first: the unready ones among them are kept too, so that a
	// failure forgotten with its snapshot cannot make it look ready when
	// its completion is delivered again. A PVC has the snapshots of an
	// app or two: a list, each ring kept at the front of its array.
	type appRing struct {
		app  string
		ring []*Snapshot
	}
	var rings []appRing
	mark := func() {
		for _, r := range rings {
			for _, s := range r.ring {
				out[s] = true
			}
		}
	}
	ri := 0
	var prevWorkloads []Workload
	var set, prev []appVersion // the sample's set of versions, the one before's
	for i, sm := range samples {
		newEpoch := false
		for ri < len(restores) && !sm.time.Before(restores[ri]) {
			ri, newEpoch = ri+1, true
		}
		changed := false
		if !sameList(sm.workloads, prevWorkloads) { // snapshots share equal lists (shareWorkloads)
			set = versionSet(set[:0], sm.workloads)
			changed = !slices.Equal(set, prev)
			set, prev = prev, set
		}
		prevWorkloads = sm.workloads
		if i == 0 || newEpoch || changed {
			if sm.snap != nil {
				out[sm.snap] = true
			}
			mark()
		}
		if sm.snap != nil {
			for j, w := range sm.workloads {
				if slices.ContainsFunc(sm.workloads[:j], func(o Workload) bool { return o.App == w.App }) {
					continue // the app's ring has it already
				}
				k := slices.IndexFunc(rings, func(r appRing) bool { return r.app == w.App })
				if k < 0 {
					k = len(rings)
					rings = append(rings, appRing{app: w.App})
				}
				ring := append(rings[k].ring, sm.snap)
				rings[k].ring = ring[:copy(ring, newestReady(ring, keep))]
			}
		}
	}
	mark()
	return out
}

// newestReady is the tail of list (oldest first) that holds its keep
// newest ready snapshots, and the unready ones after the oldest of them.
func newestReady(list []*Snapshot, keep int) []*Snapshot {
	ready := 0
	for i := len(list) - 1; i >= 0; i-- {
		if list[i].ready() {
			if ready++; ready == keep {
				return list[i:]
			}
		}
	}
	return list
}

// versionSet appends to dst the set of (application, version) ws show,
// sorted, each once.
func versionSet(dst []appVersion, ws []Workload) []appVersion {
	for _, w := range ws {
		for _, v := range w.Versions {
			dst = append(dst, appVersion{w.App, v})
		}
	}
	slices.SortFunc(dst, func(a, b appVersion) int {
		return cmp.Or(strings.Compare(a.app, b.app), strings.Compare(a.version, b.version))
	})
	return slices.Compact(dst)
}

// forgettable are the snapshots of one PVC (list, oldest first) prune may
// forget: beyond the history newest, not pinned and not kept.
func forgettable(list []*Snapshot, history int, pinned func(name string) bool, kept func(*Snapshot) bool) []*Snapshot {
	var out []*Snapshot
	for _, s := range list[:max(0, len(list)-history)] {
		if !pinned(s.Name) && !kept(s) {
			out = append(out, s)
		}
	}
	return out
}

// forgettableFailures are the records of one PVC's snapshots that never
// completed (failed: known by a failure or a restore test) that prune may
// forget: those with history of the PVC's completed snapshots (completed,
// oldest first) newer than the failure (or the restore test, which came
// after the snapshot was taken: a late test of a snapshot forgotten
// already). A failed snapshot is no restore point and no sample; its
// record only keeps the snapshot unready should its completion come too
// (the snapshotter reports one or the other: both only when it crashed
// between publishing a failure and marking it reported, while the
// snapshot became ready), so it is kept as long as such a completion would
// still be among the history newest. Completed snapshots only come, and
// prune keeps the history newest, so whether a failure is forgotten does
// not depend on the order the events came in.
func forgettableFailures(failed, completed []*Snapshot, history int) []*Snapshot {
	var out []*Snapshot
	for _, s := range failed {
		if s.Time.IsZero() {
			continue // untimed: a restore test in a state stored before tests were timed
		}
		newer, _ := slices.BinarySearchFunc(completed, s.Time, func(c *Snapshot, t time.Time) int {
			if c.Time.After(t) {
				return 1
			}
			return -1
		})
		if len(completed)-newer >= history {
			out = append(out, s)
		}
	}
	return out
}

// incomplete are the snapshots among names that never completed.
func (st *State) incomplete(names []string) []*Snapshot {
	var out []*Snapshot
	for _, name := range names {
		if s := st.Snapshots[name]; s != nil && !s.Completed {
			out = append(out, s)
		}
	}
	return out
}
