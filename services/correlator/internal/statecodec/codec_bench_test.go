package statecodec

import (
	"encoding/json"
	"testing"

	"github.com/stateguard/stateguard/services/correlator/internal/model"
	"github.com/stateguard/stateguard/services/correlator/internal/scenario"
)

// steadyState is a namespace of the mixed stream after 100 snapshot slots:
// its size no longer grows (History snapshots per PVC).
func steadyState(tb testing.TB) *model.State {
	tb.Helper()
	m := scenario.MixedStream{Apps: 2, PerNS: 2, Start: scenario.T0}
	st := model.NewState("bench-00000")
	r := model.DefaultRules()
	evs := m.Certs()
	for k := range 100 {
		evs = append(evs, m.Slot(k)...)
	}
	for _, ev := range evs {
		in, err := model.FromEvent(ev)
		if err != nil {
			tb.Fatal(err)
		}
		if _, _, err := model.Apply(r, st, in); err != nil {
			tb.Fatal(err)
		}
	}
	return st
}

// BenchmarkStateCodec compares the state codec with plain encoding/json on
// a steady-state namespace, both ways.
func BenchmarkStateCodec(b *testing.B) {
	st := steadyState(b)
	var c Codec
	data, err := c.Encode(nil, st)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("encode/encoding-json", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := json.Marshal(st); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encode/codec", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		var buf []byte
		for b.Loop() {
			var err error
			if buf, err = c.Encode(buf, st); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode/encoding-json", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if err := json.Unmarshal(data, model.NewState(st.Namespace)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode/codec", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if err := Decode(data, model.NewState(st.Namespace)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkApplySteadyState is the model's cost per event once a namespace
// holds History snapshots per PVC: each round applies the next slot (slots
// 100 to 199 of the mixed stream, again and again).
func BenchmarkApplySteadyState(b *testing.B) {
	st := steadyState(b)
	m := scenario.MixedStream{Apps: 2, PerNS: 2, Start: scenario.T0}
	r := model.DefaultRules()
	n := 0
	k := 100
	for b.Loop() {
		if k == 200 { // stay near the benchmark's 100 slots
			b.StopTimer()
			st, k = steadyState(b), 100
			b.StartTimer()
		}
		for _, ev := range m.Slot(k) {
			in, err := model.FromEvent(ev)
			if err != nil {
				b.Fatal(err)
			}
			if _, _, err := model.Apply(r, st, in); err != nil {
				b.Fatal(err)
			}
			n++
		}
		k++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/event")
}
