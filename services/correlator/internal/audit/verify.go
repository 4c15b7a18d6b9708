package audit

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"time"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/correlator/internal/engine"
	"github.com/stateguard/stateguard/services/correlator/internal/model"
	"github.com/stateguard/stateguard/services/correlator/internal/ordered"
)

// The problems Verify reports.
const (
	// ProblemAltered: a decision was published under the id the replay
	// derives, with other content (or another type, or rules).
	ProblemAltered = "altered"
	// ProblemNotDerived: a decision was published that the inputs, under
	// its rules, do not call for (forged, or its inputs are gone).
	ProblemNotDerived = "not derived"
	// ProblemNotPublished: the inputs call for a decision that is not on
	// the streams (deleted, or never published).
	ProblemNotPublished = "not published"
	// ProblemPublishedTwice: two messages carry one decision id with
	// different content.
	ProblemPublishedTwice = "published twice"
)

// Difference is one decision where the streams and the replay disagree.
type Difference struct {
	EventID string `json:"event_id"`
	Type    string `json:"type"`
	Problem string `json:"problem"`
	Detail  string `json:"detail"`
	// Stream and Seq locate the published message (none for "not
	// published"); Cause is the input the replay derived it from.
	Stream string `json:"stream,omitempty"`
	Seq    uint64 `json:"seq,omitempty"`
	Cause  string `json:"cause,omitempty"`
}

// Result is what Verify found.
type Result struct {
	Inputs        int          `json:"inputs"`
	Derived       int          `json:"derived"`
	Published     int          `json:"published"`
	Agreed        int          `json:"agreed"`
	RulesVersions []string     `json:"rules_versions"`
	Differences   []Difference `json:"differences"`
}

// RulesSource gives the rules of a version (RulesVersion of a rules file).
type RulesSource func(version string) (model.Rules, error)

// inputTypes are the events the engine consumes.
var inputTypes = func() map[string]bool {
	m := map[string]bool{}
	for _, c := range engine.Consumers {
		for _, t := range c.Types {
			m[t] = true
		}
	}
	return m
}()

type derived struct {
	d     model.Decision
	cause Record
	rules string
}

// Verify replays every input of recs (all of them, from the streams'
// beginning up to until: a state depends on its whole history) into fresh
// namespace states, in the order they were stored, under the rules in force
// for each (rulesFor), and compares the decisions it derives with the
// published ones: every published decision stored in [since, until] must be
// derived with the same content, and every decision derived from an input
// stored in [since, until] must be published.
func Verify(recs []Record, rules RulesSource, since, until time.Time) (Result, error) {
	var res Result
	pub, dups := published(recs)
	res.Differences = append(res.Differences, dups...)
	rulesFor := rulesTimeline(recs)
	got, err := replay(recs, rules, rulesFor, until, &res)
	if err != nil {
		return res, err
	}
	res.Derived = len(got)
	for _, p := range pub {
		if !within(p.Stored, since, until) {
			continue
		}
		res.Published++
		g, ok := got[p.Event.ID()]
		if !ok {
			res.Differences = append(res.Differences, Difference{EventID: p.Event.ID(), Type: p.Event.Type(), Problem: ProblemNotDerived,
				Detail: "no input, under the rules it names, calls for this decision", Stream: p.Stream, Seq: p.Seq})
			continue
		}
		if d := compare(g, p); d != "" {
			res.Differences = append(res.Differences, Difference{EventID: p.Event.ID(), Type: p.Event.Type(), Problem: ProblemAltered,
				Detail: d, Stream: p.Stream, Seq: p.Seq, Cause: g.cause.Event.ID()})
			continue
		}
		res.Agreed++
	}
	for _, id := range ordered.Keys(got) {
		g := got[id]
		if _, ok := pub[id]; ok || !within(g.cause.Stored, since, until) {
			continue
		}
		res.Differences = append(res.Differences, Difference{EventID: id, Type: g.d.Type, Problem: ProblemNotPublished,
			Detail: fmt.Sprintf("the inputs call for it (derived from %s) but no message carries it", g.cause.Event.ID()), Cause: g.cause.Event.ID()})
	}
	return res, nil
}

// published indexes the engine's decisions by id; a second message with
// the same id and other content is a difference of its own.
func published(recs []Record) (map[string]Record, []Difference) {
	pub := map[string]Record{}
	var dups []Difference
	for _, r := range recs {
		if KindOf(r.Event) != KindDecision {
			continue
		}
		id := r.Event.ID()
		if first, ok := pub[id]; ok {
			if !sameData(first.Event.Data(), r.Event.Data()) {
				dups = append(dups, Difference{EventID: id, Type: r.Event.Type(), Problem: ProblemPublishedTwice,
					Detail: fmt.Sprintf("also stored as %s #%d with other content", first.Stream, first.Seq), Stream: r.Stream, Seq: r.Seq})
			}
			continue
		}
		pub[id] = r
	}
	return pub, dups
}

// rulesTimeline says under which rules version an input was handled: the
// version its own decisions carry, or else that of the latest decision
// stored before it, or else the first version seen.
func rulesTimeline(recs []Record) func(Record) string {
	byCause := map[string]string{}
	type mark struct {
		at      time.Time
		version string
	}
	var marks []mark
	for _, r := range recs {
		if KindOf(r.Event) != KindDecision {
			continue
		}
		v := rulesVersionOf(r.Event)
		for _, c := range fieldsOf(r.Event).Causes {
			if _, ok := byCause[c]; !ok {
				byCause[c] = v
			}
		}
		marks = append(marks, mark{r.Stored, v})
	}
	return func(in Record) string {
		if v, ok := byCause[in.Event.ID()]; ok {
			return v
		}
		i := sort.Search(len(marks), func(i int) bool { return marks[i].at.After(in.Stored) })
		if i > 0 {
			return marks[i-1].version
		}
		if len(marks) > 0 {
			return marks[0].version
		}
		return ""
	}
}

func rulesVersionOf(ev events.Event) string {
	if v, ok := ev.Extensions()[events.ExtRulesVersion]; ok {
		return fmt.Sprint(v)
	}
	return ""
}

// replay applies the inputs stored up to until to fresh states.
func replay(recs []Record, rules RulesSource, rulesFor func(Record) string, until time.Time, res *Result) (map[string]derived, error) {
	states := map[string]*model.State{}
	cache := map[string]model.Rules{}
	got := map[string]derived{}
	for _, r := range recs {
		if !inputTypes[r.Event.Type()] || (!until.IsZero() && r.Stored.After(until)) {
			continue
		}
		in, err := model.FromEvent(r.Event)
		if err != nil || !engine.ValidNamespace(in.Namespace) {
			continue // ignored or dead-lettered by the engine too
		}
		res.Inputs++
		v := rulesFor(r)
		rs, ok := cache[v]
		if !ok {
			if rs, err = rules(v); err != nil {
				return nil, fmt.Errorf("rules %q (for input %s): %w", v, r.Event.ID(), err)
			}
			cache[v] = rs
			res.RulesVersions = append(res.RulesVersions, v)
		}
		st := states[in.Namespace]
		if st == nil {
			st = model.NewState(in.Namespace)
			states[in.Namespace] = st
		}
		ds, _, err := model.Apply(rs, st, in)
		if err != nil {
			continue // a permanent error: the engine dead-letters it
		}
		for _, d := range ds {
			if _, ok := got[d.ID]; !ok {
				got[d.ID] = derived{d: d, cause: r, rules: v}
			}
		}
	}
	slices.Sort(res.RulesVersions)
	return got, nil
}

// compare says how a published decision differs from the derived one ("" when
// it does not).
func compare(g derived, p Record) string {
	if g.d.Type != p.Event.Type() {
		return fmt.Sprintf("type %s published, %s derived", p.Event.Type(), g.d.Type)
	}
	want, err := json.Marshal(g.d.Payload)
	if err != nil {
		return "derived payload: " + err.Error()
	}
	if !sameData(want, p.Event.Data()) {
		return "payload differs in " + diffFields(want, p.Event.Data())
	}
	if v := rulesVersionOf(p.Event); v != g.rules {
		return fmt.Sprintf("rules version %q published, %q used by the replay", v, g.rules)
	}
	return ""
}

func sameData(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return string(a) == string(b)
	}
	return reflect.DeepEqual(x, y)
}

// diffFields names the top-level payload fields that differ.
func diffFields(want, got []byte) string {
	var x, y map[string]any
	_ = json.Unmarshal(want, &x)
	_ = json.Unmarshal(got, &y)
	var out []string
	for k := range x {
		if !reflect.DeepEqual(x[k], y[k]) {
			out = append(out, k)
		}
	}
	for k := range y {
		if _, ok := x[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	if len(out) == 0 {
		return "its encoding"
	}
	return fmt.Sprint(out)
}
