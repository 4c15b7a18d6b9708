package model

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/correlator/internal/ordered"
)

// incidentID names the incident that began when version of app started
// writing to a volume at from.
func incidentID(ns, app string, first Span) string {
	return "inc-" + hash(ns, app, first.Version, first.From.UTC().Format(time.RFC3339Nano))
}

// vulnerableSpans are app's vulnerable spans among spans, by start.
func vulnerableSpans(app string, spans []Span) []Span {
	var out []Span
	for _, sp := range spans {
		if sp.App == app && sp.Verdict == Vulnerable {
			out = append(out, sp)
		}
	}
	slices.SortFunc(out, func(a, b Span) int {
		return cmp.Or(a.From.Compare(b.From), strings.Compare(a.Version, b.Version), strings.Compare(a.PVC, b.PVC))
	})
	return out
}

// incidentSpans are the incidents of app's volumes, as groups of
// vulnerable spans, before they are dressed with reasons and restore
// points. An incident opens as soon as a vulnerable version of app wrote
// to one of its volumes. It ends (1) when the data no longer carries that
// version — a restore from a snapshot whose lineage does not hold it began
// a new epoch — or (2) when an operator resolved it and none of its
// versions runs any more. Vulnerable spans that start after a resolution
// make a new incident.
func incidentSpans(ns, app string, eps map[string][]epoch, resolutions map[string]*Resolution) []incidentGroup {
	out := restoredIncidents(ns, app, eps)
	for _, g := range currentIncidents(ns, app, eps, resolutions) {
		// The same start in a past epoch and now: the current one counts.
		out = slices.DeleteFunc(out, func(o incidentGroup) bool { return o.id == g.id })
		out = append(out, g)
	}
	slices.SortFunc(out, func(a, b incidentGroup) int {
		return cmp.Or(a.spans[0].From.Compare(b.spans[0].From), strings.Compare(a.id, b.id))
	})
	return out
}

// restoredIncidents are the incidents a restore ended: an epoch of a PVC
// whose vulnerable spans the next epoch (a restore into the PVC) does not
// inherit. A restore from a snapshot that carries the first of them does
// not end it.
func restoredIncidents(ns, app string, eps map[string][]epoch) []incidentGroup {
	var out []incidentGroup
	seen := map[string]bool{}
	for _, pvc := range ordered.Keys(eps) {
		list := eps[pvc]
		for i := 0; i+1 < len(list); i++ {
			vs := vulnerableSpans(app, list[i].spans)
			if len(vs) == 0 || slices.ContainsFunc(vulnerableSpans(app, list[i+1].spans), func(n Span) bool {
				return n.Version == vs[0].Version && n.From.Equal(vs[0].From)
			}) {
				continue // restored from a snapshot that carries it: the incident goes on
			}
			g := incidentGroup{id: incidentID(ns, app, vs[0]), spans: vs, restoredBy: list[i+1].restore}
			if !seen[g.id] {
				seen[g.id] = true
				out = append(out, g)
			}
		}
	}
	return out
}

// currentIncidents are the incidents of the vulnerable spans in the
// newest epoch of app's PVCs, by start: one incident, open until an
// operator resolved it and none of its versions runs; the spans that
// started after its resolution make the next one.
func currentIncidents(ns, app string, eps map[string][]epoch, resolutions map[string]*Resolution) []incidentGroup {
	var current []Span
	for _, pvc := range ordered.Keys(eps) {
		list := eps[pvc]
		current = append(current, vulnerableSpans(app, list[len(list)-1].spans)...)
	}
	slices.SortFunc(current, func(a, b Span) int {
		return cmp.Or(a.From.Compare(b.From), strings.Compare(a.Version, b.Version), strings.Compare(a.PVC, b.PVC))
	})
	var out []incidentGroup
	for len(current) > 0 {
		g := incidentGroup{id: incidentID(ns, app, current[0]), open: true}
		res := resolutions[g.id]
		n := len(current)
		if res != nil {
			n = 1 + slices.IndexFunc(current[1:], func(sp Span) bool { return sp.From.After(res.Time) })
			if n == 0 {
				n = len(current)
			}
		}
		g.spans, current = current[:n], current[n:]
		running := slices.ContainsFunc(g.spans, func(sp Span) bool { return sp.To == nil })
		if res != nil && !running {
			g.open, g.resolution = false, res
		}
		out = append(out, g)
	}
	return out
}

type incidentGroup struct {
	id         string
	spans      []Span
	open       bool
	restoredBy *Restore
	resolution *Resolution
}

// dressIncident turns a group into the incident's view: versions and the
// uploads behind them (incidentReasons), the restore point per PVC
// (incidentRestorePoints), the Secrets to rotate, and why it is open or
// closed (incidentEnd).
func dressIncident(r Rules, app string, g incidentGroup, vd *verdicts, views []SnapshotView, secrets []string, lineage map[string][]Span) IncidentView {
	inc := IncidentView{ID: g.id, App: app, Open: g.open, StartTime: g.spans[0].From, Start: g.spans[0].Cause}
	incidentReasons(r, &inc, app, g.spans, vd)
	incidentRestorePoints(&inc, g.spans, views, lineage)
	incidentEnd(&inc, g)
	return finishIncident(&inc, secrets)
}

// incidentReasons adds to inc the versions of spans, and for each the
// vulnerable uploads behind its verdict as reasons and causes.
func incidentReasons(r Rules, inc *IncidentView, app string, spans []Span, vd *verdicts) {
	for _, sp := range spans {
		inc.Causes, _ = setAdd(inc.Causes, sp.Cause)
		var added bool
		if inc.Versions, added = setAdd(inc.Versions, sp.Version); !added {
			continue
		}
		for _, u := range vd.ofWorkload(Workload{App: app, Label: sp.Label, Commit: sp.Commit}, sp.Version).Uploads {
			if !u.Vulnerable {
				continue
			}
			inc.SecretExposure = inc.SecretExposure || u.Secret
			inc.Reasons = append(inc.Reasons, events.Reason{
				UploadID: u.UploadID, EventID: u.EventID, Version: sp.Version, RuleIDs: u.RuleIDs, Severities: u.Severities,
				Text: fmt.Sprintf("upload %s (category %q) has %d open findings at or above %s for version %s",
					u.UploadID, u.Category, u.Open, r.Threshold, sp.Version),
			})
			inc.Causes, _ = setAdd(inc.Causes, u.EventID)
		}
	}
}

// incidentRestorePoints adds to inc, per PVC its spans touch, the lineage
// and the restore point (restorePointBefore the first vulnerable version
// wrote to it), or a reason naming the version to blame when there is none.
func incidentRestorePoints(inc *IncidentView, spans []Span, views []SnapshotView, lineage map[string][]Span) {
	firstOn := map[string]Span{}
	for _, sp := range spans {
		if f, ok := firstOn[sp.PVC]; !ok || sp.From.Before(f.From) {
			firstOn[sp.PVC] = sp
		}
	}
	for _, pvc := range ordered.Keys(firstOn) {
		first := firstOn[pvc]
		inc.Lineage = appendLineageSpans(inc.Lineage, lineage[pvc], true)
		if rp, ok := restorePointBefore(views, pvc, first.From); ok {
			inc.RestorePoints = append(inc.RestorePoints, rp)
			continue
		}
		inc.Reasons = append(inc.Reasons, events.Reason{EventID: first.Cause, Version: first.Version,
			Text: fmt.Sprintf("no restore point for PVC %s: no clean, ready snapshot was taken before version %s started writing to it at %s",
				pvc, first.Version, first.From.Format(time.RFC3339))})
	}
}

// incidentEnd closes inc when a restore ended the group, and records an
// operator's resolution (which closes it once none of its versions runs:
// incidentSpans decided that).
func incidentEnd(inc *IncidentView, g incidentGroup) {
	switch {
	case g.restoredBy != nil:
		inc.End = g.restoredBy.Snapshot
		inc.CloseReason = fmt.Sprintf("PVC %s was restored from snapshot %s, whose lineage holds no vulnerable version", g.restoredBy.PVC, g.restoredBy.Snapshot)
		inc.CloseCauses = []string{g.restoredBy.EventID}
		inc.Open = false
		inc.ClosedAt = g.restoredBy.Time
	case g.resolution != nil:
		inc.CloseReason = fmt.Sprintf("resolved by %s: %s", g.resolution.Actor, g.resolution.Reason)
		inc.CloseCauses = []string{g.resolution.EventID}
		if !inc.Open {
			inc.ClosedAt = g.resolution.Time
		}
	}
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
