package model

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/restoreplan"
	"github.com/stateguard/stateguard/services/correlator/internal/ordered"
)

// Decision is an event the correlator publishes. ID is deterministic: the
// same decision taken again (after a redelivery or a restart) has the same
// id, which JetStream de-duplicates.
type Decision struct {
	ID      string
	Type    string
	Payload any
}

// decide brings st.Ledger to what the view calls for and returns the
// decisions that do it: pins first (protect the restore point before
// recommending it), then incidents with their recommendations and rotation
// requests, then certificate expiry rotations, then unpins. It looks only
// at what ch says changed — the snapshots whose pin may have changed, the
// incidents of the applications re-derived or gone, the certificates whose
// views changed — since the ledger was brought to the view of
// everything else by the events before (the model's tests check it after
// every event); with ch.all, at everything.
func decide(r Rules, st *State, ch changes) []Decision {
	var out []Decision
	l, j := &st.Ledger, &st.Journal
	if l.Pinned == nil {
		l.Pinned = map[string]Pin{}
	}
	if l.Incidents == nil {
		l.Incidents = map[string]IncidentRecord{}
	}
	if j.PinGeneration == nil {
		j.PinGeneration = map[string]int{}
	}
	if j.Published == nil {
		j.Published = map[string]bool{}
	}
	if j.IncidentGeneration == nil {
		j.IncidentGeneration = map[string]int{}
	}
	// Pins: a new pin, or a pin whose cause changed (a known-good snapshot
	// that became an incident's restore point, or the other way round), is
	// requested, so that the snapshot's pinned-reason follows the cause.
	pinNames := ch.pinNames
	if ch.all {
		set := map[string]bool{}
		for name := range ch.pins {
			set[name] = true
		}
		for name := range l.Pinned {
			set[name] = true
		}
		pinNames = ordered.Keys(set)
	}
	for _, name := range pinNames {
		p, ok := ch.pins[name]
		if !ok {
			continue
		}
		if prev, ok := l.Pinned[name]; !ok || pinCauseChanged(prev, p) {
			j.PinGeneration[name]++
			st.pinGenerationChanged(name)
			out = append(out, Decision{
				ID:   "pin-" + hash(st.Namespace, name, strconv.Itoa(j.PinGeneration[name])),
				Type: events.TypeSnapshotPinRequested,
				Payload: events.SnapshotPinRequested{
					Namespace: st.Namespace, VolumeSnapshot: name, PVC: p.PVC,
					Reason: p.Reason, Incident: p.Incident, Causes: p.Causes,
				},
			})
		}
		l.Pinned[name] = p
	}
	// Incidents.
	inView := map[string]bool{}
	for _, av := range ch.apps {
		for _, inc := range av.Incidents {
			inView[inc.ID] = true
			out = append(out, decideIncident(st, *av, inc)...)
		}
	}
	var gone []string
	for id, rec := range l.Incidents {
		if !inView[id] && (ch.all || ch.appNames[rec.App]) {
			gone = append(gone, id)
		}
	}
	slices.Sort(gone)
	for _, id := range gone {
		rec := l.Incidents[id]
		if rec.Status == StatusOpen {
			out = append(out, Decision{
				ID:   "incident-closed-" + hash(st.Namespace, id, strconv.Itoa(j.IncidentGeneration[id])),
				Type: events.TypeIncidentClosed,
				Payload: events.IncidentClosed{
					Incident: id, Namespace: st.Namespace, App: rec.App,
					Reason: "rescinded: the facts no longer support it (a newer scan of the versions is clean, or late events re-identified the incident)",
					Causes: []string{},
				},
			})
		}
		delete(l.Incidents, id)
	}
	// Certificates close to expiry.
	for _, cv := range ch.certs {
		if !cv.NeedsRotation {
			continue
		}
		id := "rotate-expiry-" + hash(st.Namespace, cv.Secret, cv.Serial)
		if j.Published[id] {
			continue
		}
		j.Published[id] = true
		out = append(out, Decision{
			ID:   id,
			Type: events.TypeCertificateRotationRequest,
			Payload: events.CertificateRotationRequested{
				RequestID: id, Namespace: st.Namespace, Secret: cv.Secret, Reason: cv.Reason, Causes: cv.Causes,
			},
		})
	}
	// Unpins.
	for _, name := range pinNames {
		p, pinned := l.Pinned[name]
		if _, ok := ch.pins[name]; ok || !pinned {
			continue
		}
		reason, causes := unpinReason(st, name, p)
		out = append(out, Decision{
			ID:   "unpin-" + hash(st.Namespace, name, strconv.Itoa(j.PinGeneration[name])),
			Type: events.TypeSnapshotUnpinRequested,
			Payload: events.SnapshotUnpinRequested{
				Namespace: st.Namespace, VolumeSnapshot: name, PVC: p.PVC, Reason: reason, Incident: p.Incident, Causes: causes,
			},
		})
		delete(l.Pinned, name)
		// prune may forget it now. (A pinned snapshot beyond the history
		// is a lineage boundary wherever the model's tests looked — the
		// restore points and known-good are — so this keeps prune's look
		// at the changed PVCs equal to a full look without a known case.)
		st.pruneLaterSnapshot(name)
		// A pin generation is forgotten once its snapshot is gone for good
		// (pruned and not pinned: prune drops any event about it that comes
		// again); prune forgets those of the unpinned snapshots it drops.
		if _, ok := st.Snapshots[name]; !ok {
			delete(j.PinGeneration, name)
		}
	}
	return out
}

// pinCauseChanged says whether a pin in force must be requested again
// because why it is pinned changed. Only the reason and the incident count:
// the cause event ids grow with every scan and would re-pin on each.
func pinCauseChanged(prev, cur Pin) bool {
	return prev.Reason != cur.Reason || prev.Incident != cur.Incident
}

func decideIncident(st *State, av AppView, inc IncidentView) []Decision {
	var out []Decision
	l, j := &st.Ledger, &st.Journal
	rec, known := l.Incidents[inc.ID]
	if incidentOpens(rec, known, inc) {
		j.IncidentGeneration[inc.ID]++
		out = append(out, Decision{
			ID:   "incident-opened-" + hash(st.Namespace, inc.ID, strconv.Itoa(j.IncidentGeneration[inc.ID])),
			Type: events.TypeIncidentOpened,
			Payload: events.IncidentOpened{
				Incident: inc.ID, Namespace: st.Namespace, App: av.App, Versions: inc.Versions,
				Reasons: inc.Reasons, Causes: inc.Causes, Lineage: inc.Lineage,
			},
		})
		rec = IncidentRecord{App: av.App, Status: StatusOpen, Start: inc.StartTime}
	}
	rec.Start = inc.StartTime
	if inc.Open {
		out = append(out, recommend(st, av, inc)...)
	}
	for _, secret := range inc.Secrets {
		id := "rotate-exposure-" + hash(st.Namespace, inc.ID, secret)
		if j.Published[id] {
			continue
		}
		j.Published[id] = true
		out = append(out, Decision{
			ID:   id,
			Type: events.TypeCertificateRotationRequest,
			Payload: events.CertificateRotationRequested{
				RequestID: id, Namespace: st.Namespace, Secret: secret, App: av.App, Incident: inc.ID,
				Reason: fmt.Sprintf("possible key exposure: %s ran versions with findings that point at exposed keys or credentials", av.App),
				Causes: inc.Causes,
			},
		})
	}
	if !inc.Open && rec.Status != StatusClosed {
		causes := slices.Clone(inc.CloseCauses)
		out = append(out, Decision{
			ID:   "incident-closed-" + hash(st.Namespace, inc.ID, strconv.Itoa(j.IncidentGeneration[inc.ID])),
			Type: events.TypeIncidentClosed,
			Payload: events.IncidentClosed{
				Incident: inc.ID, Namespace: st.Namespace, App: av.App,
				Reason: inc.CloseReason,
				Causes: causes,
			},
		})
		rec.Status = StatusClosed
	}
	if inc.Open {
		rec.Status = StatusOpen
	}
	l.Incidents[inc.ID] = rec
	return out
}

// incidentOpens says whether the view's incident inc opens now: it is new
// to the ledger, or the ledger has it closed and the facts open it again
// (a later restore from a snapshot that carries its first vulnerable
// version, a resolution that no longer holds). Each opening is a new
// generation of the incident, so each open/close cycle has decision ids of
// its own: a second incident.closed with the first one's id would be
// de-duplicated by JetStream, and the stream would never say that the
// incident opened again nor that it closed again.
func incidentOpens(rec IncidentRecord, known bool, inc IncidentView) bool {
	return !known || (inc.Open && rec.Status == StatusClosed)
}

// recommend returns the restore recommendations an open incident calls
// for: one current recommendation per PVC; when its restore point changes,
// a new revision that names the one it supersedes.
func recommend(st *State, av AppView, inc IncidentView) []Decision {
	var out []Decision
	j := &st.Journal
	if j.Recommended == nil {
		j.Recommended = map[string]Recommendation{}
	}
	for _, rp := range inc.RestorePoints {
		key := inc.ID + "\x00" + rp.PVC
		prev, had := j.Recommended[key]
		if had && prev.Snapshot == rp.Name {
			continue
		}
		d, err := restoreDecision(st.Namespace, av, inc, rp)
		if err != nil {
			continue // restoreplan only fails without a PVC name; nothing to recommend
		}
		rec := Recommendation{Snapshot: rp.Name, Revision: prev.Revision + 1}
		rec.ID = "restore-" + hash(st.Namespace, inc.ID, rp.PVC, rp.Name, strconv.Itoa(rec.Revision))
		p := d.Payload.(events.RestoreRecommended)
		p.Revision, p.Supersedes = rec.Revision, prev.ID
		d.ID, d.Payload = rec.ID, p
		j.Recommended[key] = rec
		out = append(out, d)
	}
	return out
}

func restoreDecision(ns string, av AppView, inc IncidentView, rp SnapshotView) (Decision, error) {
	plan, err := restoreplan.For(restoreplan.Snapshot{
		Namespace: ns, VolumeSnapshot: rp.Name, PVC: rp.PVC, RestoreSize: rp.RestoreSize, Workloads: rp.Workloads,
	})
	if err != nil {
		return Decision{}, err
	}
	causes, _ := setAdd(slices.Clone(inc.Causes), rp.EventID)
	return Decision{
		Type: events.TypeRestoreRecommended,
		Payload: events.RestoreRecommended{
			Incident: inc.ID, Namespace: ns, App: av.App, PVC: rp.PVC, VolumeSnapshot: rp.Name,
			SnapshotTime: rp.Time, Versions: inc.Versions, Reasons: inc.Reasons,
			Manifest: plan.Manifest, Steps: plan.Steps, Causes: causes, Lineage: lineageOn(inc.Lineage, rp.PVC),
		},
	}, nil
}

func unpinReason(st *State, name string, p Pin) (string, []string) {
	// The views that can show the snapshot: those of the applications
	// that ran on it, in name order (the cache's, just derived).
	var apps []string
	if s := st.Snapshots[name]; s != nil {
		for _, w := range s.Workloads {
			apps, _ = setAdd(apps, w.App)
		}
	}
	for _, app := range apps {
		views := st.cache.apps[app]
		if views == nil {
			continue
		}
		av := st.cache.materialize(views)
		sv, ok := av.Snapshot(name)
		if !ok {
			continue
		}
		if sv.Class != Clean || !sv.Ready {
			return fmt.Sprintf("snapshot is no longer known-good: class %s, ready %t", sv.Class, sv.Ready), av.snapshotCauses(name)
		}
		if p.Incident != "" {
			if i := slices.IndexFunc(av.Incidents, func(inc IncidentView) bool { return inc.ID == p.Incident }); i >= 0 && av.Incidents[i].Open {
				return "incident " + p.Incident + " has a newer restore point for the PVC", []string{sv.EventID}
			}
			return "incident " + p.Incident + " is closed", []string{sv.EventID}
		}
		if kg := av.KnownGood[sv.PVC]; len(kg) > 0 {
			return "a newer known-good snapshot exists: " + kg[0], av.snapshotCauses(kg[0])
		}
	}
	return "snapshot is no longer tracked", []string{}
}

func lineageOn(spans []events.LineageSpan, pvc string) []events.LineageSpan {
	var out []events.LineageSpan
	for _, sp := range spans {
		if sp.PVC == pvc {
			out = append(out, sp)
		}
	}
	return out
}

// InForce lists the decisions in force in a ledger, for comparisons.
func (l Ledger) InForce() map[string]string {
	out := map[string]string{}
	for _, k := range ordered.Keys(l.Pinned) {
		out["pin/"+k] = l.Pinned[k].Reason
	}
	for _, k := range ordered.Keys(l.Incidents) {
		out["incident/"+k] = l.Incidents[k].Status
	}
	return out
}
