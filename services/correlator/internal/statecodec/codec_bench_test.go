package statecodec

import (
	"encoding/json"
	"flag"
	"testing"

	"github.com/stateguard/stateguard/services/correlator/internal/model"
	"github.com/stateguard/stateguard/services/correlator/internal/scenariotest"
)

var (
	benchAppsPerNS = flag.Int("apps-per-namespace", 2, "BenchmarkStateCodec, BenchmarkApplySteadyState: applications in the namespace (1000: #14's large namespace)")
	benchSlots     = flag.Int("steady-slots", 100, "BenchmarkStateCodec, BenchmarkApplySteadyState: snapshot slots before the namespace counts as steady (more than History)")
)

// steadyState is a namespace of the mixed stream after -steady-slots
// snapshot slots: its size no longer grows (History snapshots per PVC).
func steadyState(tb testing.TB) *model.State {
	tb.Helper()
	m := scenariotest.MixedStream{Apps: *benchAppsPerNS, PerNS: *benchAppsPerNS, Start: scenariotest.T0}
	st := model.NewState("bench-00000")
	r := model.DefaultRules()
	evs := m.Certs()
	for k := range *benchSlots {
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
	// The sizes, against NATS's 1 MiB max payload for one KV value.
	b.ReportMetric(float64(len(data)), "json-bytes")
	b.ReportMetric(float64(len(Compress(nil, data))), "stored-bytes")
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
// 100 to 199 of the mixed stream, again and again; -steady-slots moves
// them).
func BenchmarkApplySteadyState(b *testing.B) {
	st := steadyState(b)
	m := scenariotest.MixedStream{Apps: *benchAppsPerNS, PerNS: *benchAppsPerNS, Start: scenariotest.T0}
	r := model.DefaultRules()
	n := 0
	k := *benchSlots
	for b.Loop() {
		if k == 2**benchSlots { // stay near the steady slots
			b.StopTimer()
			st, k = steadyState(b), *benchSlots
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
