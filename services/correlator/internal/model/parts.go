package model

import (
	"slices"

	"github.com/stateguard/stateguard/services/correlator/internal/ordered"
)

// The store keeps a namespace's state in several KV keys: the facts of
// each PVC (its snapshots, workload observations and restores) and the
// SARIF uploads apart from the rest, so that a namespace of many
// applications never makes one value over NATS's max payload and a write
// carries only the PVCs and uploads that changed. The State notes which
// PVCs' facts and which uploads changed since the store last took them.

// PartFacts are the facts of one part (one key of the store): those of
// the PVCs of the part, with the pin generations of their snapshots (the
// journal's largest map: one entry per snapshot ever pinned and not yet
// pruned), or uploads.
type PartFacts struct {
	Snapshots     map[string]*Snapshot
	Observations  map[string]*Observation
	Restores      map[string]*Restore
	PinGeneration map[string]int
	Uploads       map[string]*Upload
}

// pinGenerationChanged notes that the pin generation of the snapshot name
// changed: it is stored with its PVC's facts, or with the namespace's own
// while the snapshot is not known or has no PVC. (A snapshot leaves
// Snapshots only with its pin generation: prune.)
func (st *State) pinGenerationChanged(name string) {
	if s := st.Snapshots[name]; s != nil && s.PVC != "" {
		st.partChanged(s.PVC)
		return
	}
	st.pinApart(name)
}

func (st *State) pinApart(name string) {
	if st.pinsApart == nil {
		st.pinsApart = map[string]struct{}{}
	}
	st.pinsApart[name] = struct{}{}
}

// MarkPinGenerationsApart notes that the pin generations st holds were read
// from the namespace's own key (before its parts are added): they stay
// there until their snapshots are found in a part.
func (st *State) MarkPinGenerationsApart() {
	for name := range st.Journal.PinGeneration {
		st.pinApart(name)
	}
}

// uploadChanged notes that the upload id was added, replaced or dropped.
func (st *State) uploadChanged(id string) {
	if st.changedUploads == nil {
		st.changedUploads = map[string]struct{}{}
	}
	st.changedUploads[id] = struct{}{}
}

// TakeChangedUploads returns the ids of the uploads added, replaced or
// dropped since the last call, sorted, and forgets them.
func (st *State) TakeChangedUploads() []string {
	out := ordered.Keys(st.changedUploads)
	clear(st.changedUploads)
	return out
}

// partChanged notes that the facts of pvc changed.
func (st *State) partChanged(pvc string) {
	st.pruneLater(pvc)
	if pvc == "" {
		return // kept with the namespace's own facts
	}
	if st.changedParts == nil {
		st.changedParts = map[string]struct{}{}
	}
	st.changedParts[pvc] = struct{}{}
}

// TakeChangedParts returns the PVCs whose facts changed since the last
// call, sorted, and forgets them.
func (st *State) TakeChangedParts() []string {
	out := make([]string, 0, len(st.changedParts))
	for pvc := range st.changedParts {
		out = append(out, pvc)
	}
	clear(st.changedParts)
	slices.Sort(out)
	return out
}

// MarkAllPartsChanged notes every PVC with facts and every upload as
// changed (a state read from an older layout is written again in this
// one).
func (st *State) MarkAllPartsChanged() {
	for id := range st.Uploads {
		st.uploadChanged(id)
	}
	st.MarkPinGenerationsApart()
	for _, s := range st.Snapshots {
		st.partChanged(s.PVC)
	}
	for _, o := range st.Observations {
		st.partChanged(o.PVC)
	}
	for _, r := range st.Restores {
		st.partChanged(r.PVC)
	}
}

// PartsOf splits st for the store: partOf names the part (key) a PVC's
// facts go to, and parts are the facts of the parts named in want (empty for
// a part with none left), rest a copy of st without the facts of any PVC
// (snapshots not yet known to belong to a PVC stay, and the pin
// generations of snapshots in no part) and without uploads (UploadsOf),
// sharing everything else with st.
func (st *State) PartsOf(partOf func(pvc string) string, want []string) (rest *State, parts map[string]*PartFacts) {
	parts = make(map[string]*PartFacts, len(want))
	for _, name := range want {
		parts[name] = &PartFacts{}
	}
	cp := *st
	cp.Snapshots, cp.Observations, cp.Restores, cp.Uploads = nil, nil, nil, nil
	cp.names, cp.namesOK = nil, false
	cp.byPVCFacts, cp.cache = nil, nil
	// The pin generations of snapshots in no part (pinsApart, checked
	// again: a snapshot may have come or found its PVC since).
	cp.Journal.PinGeneration = nil
	for name := range st.pinsApart {
		n, ok := st.Journal.PinGeneration[name]
		if s := st.Snapshots[name]; !ok || s != nil && s.PVC != "" {
			delete(st.pinsApart, name)
			continue
		}
		if cp.Journal.PinGeneration == nil {
			cp.Journal.PinGeneration = map[string]int{}
		}
		cp.Journal.PinGeneration[name] = n
	}
	cp.pinsApart = nil
	x := st.pvcIndex()
	for _, name := range x.snapshots[""] {
		if cp.Snapshots == nil {
			cp.Snapshots = map[string]*Snapshot{}
		}
		cp.Snapshots[name] = st.Snapshots[name]
	}
	// The PVCs of the wanted parts, from the index: what the write does
	// not carry is not looked at.
	x.partsKnown(partOf)
	for _, name := range want {
		p, n := parts[name], 0
		for _, pvc := range x.byPart[name] {
			n += len(x.snapshots[pvc])
		}
		if n > 0 {
			// Sized at once: growing a map of a part's snapshots, for
			// every write, was a tenth of the bytes a write allocated.
			p.Snapshots = make(map[string]*Snapshot, n)
		}
		for _, pvc := range x.byPart[name] {
			x.partFacts(st, pvc, p)
		}
	}
	return &cp, parts
}

// PartPVCs are, sorted, the PVCs of part (partOf names each PVC's part)
// that had facts since st's per-PVC index was built — those with none left
// have empty PVCFacts —, without going over the namespace's other PVCs.
func (st *State) PartPVCs(partOf func(pvc string) string, part string) []string {
	x := st.pvcIndex()
	x.partsKnown(partOf)
	return slices.Clone(x.byPart[part])
}

// PVCFacts are the facts of one PVC, as PartsOf gives them for a part of
// that PVC alone.
func (st *State) PVCFacts(pvc string) *PartFacts {
	x := st.pvcIndex()
	p := &PartFacts{}
	if n := len(x.snapshots[pvc]); n > 0 && pvc != "" {
		p.Snapshots = make(map[string]*Snapshot, n)
	}
	if pvc != "" {
		x.partFacts(st, pvc, p)
	}
	return p
}

// partFacts adds the facts of pvc to p (its Snapshots made when pvc has
// any).
func (x *pvcFacts) partFacts(st *State, pvc string, p *PartFacts) {
	if names := x.snapshots[pvc]; len(names) > 0 {
		for _, name := range names {
			p.Snapshots[name] = st.Snapshots[name]
			if n, ok := st.Journal.PinGeneration[name]; ok {
				if p.PinGeneration == nil {
					p.PinGeneration = make(map[string]int, len(names))
				}
				p.PinGeneration[name] = n
			}
		}
	}
	if ids := x.observations[pvc]; len(ids) > 0 {
		if p.Observations == nil {
			p.Observations = map[string]*Observation{}
		}
		for _, id := range ids {
			p.Observations[id] = st.Observations[id]
		}
	}
	if ids := x.restores[pvc]; len(ids) > 0 {
		if p.Restores == nil {
			p.Restores = map[string]*Restore{}
		}
		for _, id := range ids {
			p.Restores[id] = st.Restores[id]
		}
	}
}

// UploadsOf returns the uploads of the parts named in want (empty for a
// part with none left): partOf names the part (key) an upload goes to.
func (st *State) UploadsOf(partOf func(id string) string, want []string) map[string]*PartFacts {
	parts := make(map[string]*PartFacts, len(want))
	for _, name := range want {
		parts[name] = &PartFacts{}
	}
	for id, u := range st.Uploads {
		if p := parts[partOf(id)]; p != nil {
			if p.Uploads == nil {
				p.Uploads = map[string]*Upload{}
			}
			p.Uploads[id] = u
		}
	}
	return parts
}

// AddPart adds the facts of one part read from its key to st.
func (st *State) AddPart(p *PartFacts) {
	for name, n := range p.PinGeneration {
		if st.Journal.PinGeneration == nil {
			st.Journal.PinGeneration = map[string]int{}
		}
		st.Journal.PinGeneration[name] = n
	}
	for id, u := range p.Uploads {
		if st.Uploads == nil {
			st.Uploads = map[string]*Upload{}
		}
		st.Uploads[id] = u
	}
	for name, s := range p.Snapshots {
		if st.Snapshots == nil {
			st.Snapshots = map[string]*Snapshot{}
		}
		st.Snapshots[name] = s
	}
	for id, o := range p.Observations {
		if st.Observations == nil {
			st.Observations = map[string]*Observation{}
		}
		st.Observations[id] = o
	}
	for id, r := range p.Restores {
		if st.Restores == nil {
			st.Restores = map[string]*Restore{}
		}
		st.Restores[id] = r
	}
	st.namesOK = false
	st.cache = nil // its lists and index know nothing of the part
	st.byPVCFacts = nil
}

// Empty reports whether the PVC has no facts left.
func (p *PartFacts) Empty() bool {
	return len(p.Snapshots) == 0 && len(p.Observations) == 0 && len(p.Restores) == 0 && len(p.Uploads) == 0
}
