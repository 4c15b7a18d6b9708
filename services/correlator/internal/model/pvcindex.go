package model

// pvcFacts lists, per PVC, the names of its snapshots and the ids of its
// observations and restores (snapshots whose PVC is not known yet under
// ""), so that the store's split (PartsOf) takes the facts of the parts it
// writes without going over the namespace's: at 1,000 applications in one
// namespace, going over every snapshot on every write cost as much as
// deriving the application an event touched. Built when first needed,
// kept up to date by the changes of the facts (in memory only).
type pvcFacts struct {
	snapshots    map[string]map[string]bool
	observations map[string]map[string]bool
	restores     map[string]map[string]bool
	// part memoises the part of each PVC (the store's partOf).
	part map[string]string
}

func setIn(m map[string]map[string]bool, k, v string) {
	if m[k] == nil {
		m[k] = map[string]bool{}
	}
	m[k][v] = true
}

func unsetIn(m map[string]map[string]bool, k, v string) {
	delete(m[k], v)
	if len(m[k]) == 0 {
		delete(m, k)
	}
}

// pvcIndex is st's per-PVC index, built from its facts the first time.
func (st *State) pvcIndex() *pvcFacts {
	if st.byPVCFacts != nil {
		return st.byPVCFacts
	}
	x := &pvcFacts{snapshots: map[string]map[string]bool{}, observations: map[string]map[string]bool{},
		restores: map[string]map[string]bool{}, part: map[string]string{}}
	for name, s := range st.Snapshots {
		setIn(x.snapshots, s.PVC, name)
	}
	for id, o := range st.Observations {
		setIn(x.observations, o.PVC, id)
	}
	for id, r := range st.Restores {
		setIn(x.restores, r.PVC, id)
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
	setIn(x.snapshots, s.PVC, s.Name)
}

func (st *State) unindexSnapshot(s *Snapshot) {
	if x := st.byPVCFacts; x != nil {
		unsetIn(x.snapshots, s.PVC, s.Name)
	}
}

func (st *State) indexObservation(o *Observation) {
	if x := st.byPVCFacts; x != nil {
		setIn(x.observations, o.PVC, o.EventID)
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
	setIn(x.restores, r.PVC, r.ID)
}
