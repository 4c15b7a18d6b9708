package model

// pvcFacts lists, per PVC, the names of its snapshots and the ids of its
// observations and restores (snapshots whose PVC is not known yet under
// ""), each list sorted (a slice: a set of maps of bools cost 80 bytes a
// snapshot), so that the store's split (PartsOf) takes the facts of the parts it
// writes without going over the namespace's: at 1,000 applications in one
// namespace, going over every snapshot on every write cost as much as
// deriving the application an event touched. Built when first needed,
// kept up to date by the changes of the facts (in memory only).
type pvcFacts struct {
	snapshots    map[string][]string
	observations map[string][]string
	restores     map[string][]string
	// part memoises the part of each PVC (the store's partOf), byPart
	// lists the PVCs of each part, sorted (those that ever had facts since
	// the index was built), so PartsOf goes over the PVCs of the parts it
	// writes only; fresh are the PVCs given facts whose part is not known
	// yet.
	part   map[string]string
	byPart map[string][]string
	fresh  []string
}

// add adds v to the list of pvc in m.
func (x *pvcFacts) add(m map[string][]string, pvc, v string) {
	if _, ok := x.part[pvc]; !ok && pvc != "" && len(m[pvc]) == 0 {
		x.fresh = append(x.fresh, pvc)
	}
	setIn(m, pvc, v)
}

// partsKnown assigns the fresh PVCs to their parts (partOf).
func (x *pvcFacts) partsKnown(partOf func(pvc string) string) {
	for _, pvc := range x.fresh {
		if _, ok := x.part[pvc]; !ok {
			part := partOf(pvc)
			x.part[pvc] = part
			x.byPart[part], _ = setAdd(x.byPart[part], pvc)
		}
	}
	clear(x.fresh)
	x.fresh = x.fresh[:0]
}

func setIn(m map[string][]string, k, v string) {
	m[k], _ = setAdd(m[k], v)
}

func unsetIn(m map[string][]string, k, v string) {
	if list := setRemove(m[k], v); len(list) > 0 {
		m[k] = list
	} else {
		delete(m, k)
	}
}

// pvcIndex is st's per-PVC index, built from its facts the first time.
func (st *State) pvcIndex() *pvcFacts {
	if st.byPVCFacts != nil {
		return st.byPVCFacts
	}
	x := &pvcFacts{snapshots: map[string][]string{}, observations: map[string][]string{},
		restores: map[string][]string{}, part: map[string]string{}, byPart: map[string][]string{}}
	for name, s := range st.Snapshots {
		x.add(x.snapshots, s.PVC, name)
	}
	for id, o := range st.Observations {
		x.add(x.observations, o.PVC, id)
	}
	for id, r := range st.Restores {
		x.add(x.restores, r.PVC, id)
	}
	st.byPVCFacts = x
	return x
}

// indexSnapshot notes that snapshot s now belongs to its PVC (it was of
// from, or new when isNew); unindexSnapshot that it is gone.
func (st *State) indexSnapshot(s *Snapshot, from string, isNew bool) {
	x := st.byPVCFacts
	if x == nil {
		return
	}
	if !isNew {
		unsetIn(x.snapshots, from, s.Name)
	}
	x.add(x.snapshots, s.PVC, s.Name)
}

func (st *State) unindexSnapshot(s *Snapshot) {
	if x := st.byPVCFacts; x != nil {
		unsetIn(x.snapshots, s.PVC, s.Name)
	}
}

func (st *State) indexObservation(o *Observation) {
	if x := st.byPVCFacts; x != nil {
		x.add(x.observations, o.PVC, o.EventID)
	}
}

// indexRestore notes restore r, which replaces old (nil for none).
func (st *State) indexRestore(r, old *Restore) {
	x := st.byPVCFacts
	if x == nil {
		return
	}
	if old != nil {
		unsetIn(x.restores, old.PVC, old.ID)
	}
	x.add(x.restores, r.PVC, r.ID)
}
