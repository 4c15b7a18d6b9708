package audit

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/stateguard/stateguard/pkg/events"
)

// The kinds of an Entry.
const (
	KindDecision = "decision" // the correlator decided it from the events in causes
	KindOperator = "operator" // a person did it through the correlator's API
)

// Entry is one line of the audit trail.
type Entry struct {
	Time         time.Time `json:"time"`
	Stored       time.Time `json:"stored"`
	EventID      string    `json:"event_id"`
	Type         string    `json:"type"`
	Kind         string    `json:"kind"`
	Namespace    string    `json:"namespace,omitempty"`
	Subject      string    `json:"subject,omitempty"`
	Actor        string    `json:"actor"`
	Causes       []string  `json:"causes,omitempty"`
	RulesVersion string    `json:"rules_version,omitempty"`
	Summary      string    `json:"summary,omitempty"`
	Stream       string    `json:"stream"`
	Seq          uint64    `json:"seq"`
}

// decisionTypes are the types the correlator's engine decides.
var decisionTypes = map[string]bool{
	events.TypeSnapshotPinRequested:       true,
	events.TypeSnapshotUnpinRequested:     true,
	events.TypeRestoreRecommended:         true,
	events.TypeIncidentOpened:             true,
	events.TypeIncidentClosed:             true,
	events.TypeCertificateRotationRequest: true,
}

// operatorTypes are the operators' actions through the correlator's API.
var operatorTypes = map[string]bool{
	events.TypeIncidentResolved:           true,
	events.TypeFindingDismissed:           true,
	events.TypeRestoreRequested:           true,
	events.TypeCertificateRotationRequest: true, // with an actor
}

// fields are the payload fields an entry reads, whatever the type.
type fields struct {
	Namespace  string   `json:"namespace"`
	Actor      string   `json:"actor"`
	Causes     []string `json:"causes"`
	Reason     string   `json:"reason"`
	Incident   string   `json:"incident"`
	IncidentID string   `json:"incident_id"`
	App        string   `json:"app"`
	Versions   []string `json:"versions"`
	Snapshot   string   `json:"volume_snapshot"`
	RuleID     string   `json:"rule_id"`
}

// KindOf says whether an event is a decision of the engine, an operator's
// action or neither ("").
func KindOf(ev events.Event) string {
	typ := ev.Type()
	if typ == events.TypeCertificateRotationRequest {
		if f := fieldsOf(ev); f.Actor != "" {
			return KindOperator
		}
		return KindDecision
	}
	switch {
	case decisionTypes[typ]:
		return KindDecision
	case operatorTypes[typ]:
		return KindOperator
	}
	return ""
}

func fieldsOf(ev events.Event) fields {
	var f fields
	_ = json.Unmarshal(ev.Data(), &f)
	return f
}

// Export lists the decisions and operator actions among recs stored in
// [since, until] (a zero bound is open), in the order they were stored.
func Export(recs []Record, since, until time.Time) []Entry {
	var out []Entry
	for _, r := range recs {
		if !within(r.Stored, since, until) {
			continue
		}
		kind := KindOf(r.Event)
		if kind == "" {
			continue
		}
		out = append(out, entryOf(r, kind))
	}
	return out
}

func within(t, since, until time.Time) bool {
	return (since.IsZero() || !t.Before(since)) && (until.IsZero() || !t.After(until))
}

func entryOf(r Record, kind string) Entry {
	ev := r.Event
	f := fieldsOf(ev)
	e := Entry{
		Time: ev.Time().UTC(), Stored: r.Stored, EventID: ev.ID(), Type: ev.Type(), Kind: kind,
		Namespace: f.Namespace, Subject: ev.Subject(), Actor: f.Actor, Causes: f.Causes,
		Summary: summary(ev.Type(), f), Stream: r.Stream, Seq: r.Seq,
	}
	if v, ok := ev.Extensions()[events.ExtRulesVersion]; ok {
		e.RulesVersion = fmt.Sprint(v)
	}
	if kind == KindDecision {
		e.Actor = "correlator"
	}
	if kind == KindOperator && len(e.Causes) == 0 {
		// An operator acts on an incident: that is what the action follows.
		e.Causes = nonEmpty(f.Incident, f.IncidentID)
	}
	return e
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

func summary(typ string, f fields) string {
	switch typ {
	case events.TypeIncidentOpened:
		return fmt.Sprintf("incident %s opened for %s: vulnerable %s", f.Incident, f.App, strings.Join(f.Versions, ", "))
	case events.TypeFindingDismissed:
		return fmt.Sprintf("finding %s of %s dismissed: %s", f.RuleID, f.App, f.Reason)
	case events.TypeSnapshotPinRequested, events.TypeSnapshotUnpinRequested:
		return fmt.Sprintf("%s: %s", f.Snapshot, f.Reason)
	}
	return f.Reason
}

// WriteJSONL writes one JSON object per entry and line.
func WriteJSONL(w io.Writer, es []Entry) error {
	enc := json.NewEncoder(w)
	for _, e := range es {
		if err := enc.Encode(e); err != nil {
			return err
		}
	}
	return nil
}

// CSVHeader is the first line of WriteCSV.
var CSVHeader = []string{"time", "stored", "event_id", "type", "kind", "namespace", "subject", "actor", "causes", "rules_version", "summary", "stream", "seq"}

// WriteCSV writes a header and one line per entry (causes separated by
// spaces).
func WriteCSV(w io.Writer, es []Entry) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return err
	}
	for _, e := range es {
		row := []string{e.Time.Format(time.RFC3339Nano), e.Stored.Format(time.RFC3339Nano), e.EventID, e.Type, e.Kind,
			e.Namespace, e.Subject, e.Actor, strings.Join(e.Causes, " "), e.RulesVersion, e.Summary, e.Stream, strconv.FormatUint(e.Seq, 10)}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
