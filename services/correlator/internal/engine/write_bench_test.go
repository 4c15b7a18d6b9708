package engine

import (
	"encoding/json"
	"testing"

	"github.com/stateguard/stateguard/services/correlator/internal/model"
	scenario "github.com/stateguard/stateguard/services/correlator/internal/scenariotest"
	"github.com/stateguard/stateguard/services/correlator/internal/statecodec"
)

// BenchmarkStoreWrite is the store's work to write a namespace after one
// event, without a server: a namespace of the mixed stream (two
// applications, one observation per 20 snapshot events) after
// 100 slots, then each round applies the next event (not timed),
// with its decisions in the outbox as the engine puts them there, and
// encodes the write — the namespace's key and the parts that changed,
// split, encoded and compressed (store.encode) — and settles it as stored.
// It is most of what the correlator does per event besides the model, and
// what the 1M-event benchmark's profile showed as the largest single cost.
func BenchmarkStoreWrite(b *testing.B) {
	const apps = 2
	m := scenario.MixedStream{Apps: apps, PerNS: apps, Start: scenario.T0, ObserveEvery: 20}
	ns, _ := m.Names(0)
	r := model.DefaultRules()
	inputs := func(k int) []model.Input {
		var out []model.Input
		for _, ev := range m.Slot(k) {
			in, err := model.FromEvent(ev)
			if err != nil {
				b.Fatal(err)
			}
			if in.Namespace == ns {
				out = append(out, in)
			}
		}
		return out
	}
	// The namespace after 100 slots, as at the end of the 1M-event run;
	// the rounds go on to slot 199, then start again from 100 (beyond,
	// the namespace keeps growing: a version's first snapshots stay).
	const slots = 100
	steady := func() *model.State {
		st := model.NewState(ns)
		for _, ev := range m.Certs() {
			in, err := model.FromEvent(ev)
			if err != nil {
				b.Fatal(err)
			}
			if in.Namespace == ns {
				if _, _, err := model.Apply(r, st, in); err != nil {
					b.Fatal(err)
				}
			}
		}
		for k := range slots {
			for _, in := range inputs(k) {
				if _, _, err := model.Apply(r, st, in); err != nil {
					b.Fatal(err)
				}
			}
		}
		return st
	}
	s := newStore(nil, nil, 0, newMetrics(nil))
	var en *entry
	write := func() int {
		en.gen++
		en.mu.Lock()
		w, ok := s.encode(en)
		if !ok {
			b.Fatal("nothing to write")
		}
		if w.err != nil {
			b.Fatal(w.err)
		}
		size := w.size
		s.settle(w)
		// Published: the outbox empties with the next write.
		en.omu.Lock()
		en.outbox = en.outbox[:0]
		en.ogen++
		en.omu.Unlock()
		return size
	}
	var queue []model.Input
	k, events, bytes := 2*slots, 0, 0
	for b.Loop() {
		b.StopTimer()
		for len(queue) == 0 {
			if k == 2*slots {
				en, k = &entry{ns: ns, st: steady()}, slots
				write() // every part, once
			}
			queue = inputs(k)
			k++
		}
		ds, _, err := model.Apply(r, en.st, queue[0])
		if err != nil {
			b.Fatal(err)
		}
		queue = queue[1:]
		if len(ds) > 0 {
			rec := statecodec.Pending{Cause: "cause", RulesVersion: "bench"}
			for _, d := range ds {
				payload, err := json.Marshal(d.Payload)
				if err != nil {
					b.Fatal(err)
				}
				rec.Decisions = append(rec.Decisions, statecodec.PendingDecision{ID: d.ID, Type: d.Type, Payload: payload})
			}
			en.lastSeq++
			rec.Seq = en.lastSeq
			en.outbox = append(en.outbox, rec)
		}
		b.StartTimer()
		bytes += write()
		events++
	}
	b.ReportMetric(float64(bytes)/float64(events), "stored-bytes/write")
}
