package model

import (
	"errors"
	"flag"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"testing"

	"github.com/stateguard/stateguard/pkg/events"

	scenario "github.com/stateguard/stateguard/services/correlator/internal/scenariotest"
)

var (
	growthProfile = flag.String("growthprofile", "", "BenchmarkStateGrowth: write a heap profile here at the end, with the states live")
	growthSlots   = flag.Int("growth-slots", 100, "BenchmarkStateGrowth: snapshot slots (a snapshot per application each)")
	growthFail    = flag.Int("growth-fail-every", 0, "BenchmarkStateGrowth: every this many slots each application's claim has one more snapshot, which fails and never completes (0: none)")
)

// BenchmarkStateGrowth applies the benchmarks' mixed stream (1,000
// applications, two per namespace, one observation per 20 snapshot
// events) slot by slot to in-memory states with their view caches, as the
// engine keeps them, and reports the Go heap per application after 100
// slots (-growth-slots), and its growth per slot over the second half: the state kept per
// application must stop growing once pruning starts, or a long run ends
// at the memory limit (#14).
func BenchmarkStateGrowth(b *testing.B) {
	for b.Loop() {
		stateGrowth(b, 1000, *growthSlots)
	}
}

func stateGrowth(b *testing.B, apps, slots int) {
	r := DefaultRules()
	m := scenario.MixedStream{Apps: apps, PerNS: 2, Start: scenario.T0, ObserveEvery: 20}
	states := map[string]*State{}
	apply := func(k int) {
		evs := m.Certs()
		if k >= 0 {
			evs = withFailures(m.Slot(k), k, *growthFail)
		}
		for _, ev := range evs {
			in, err := FromEvent(ev)
			if errors.Is(err, ErrIgnored) {
				continue
			}
			if err != nil {
				b.Fatal(err)
			}
			st := states[in.Namespace]
			if st == nil {
				st = NewState(in.Namespace)
				states[in.Namespace] = st
			}
			if _, _, err := Apply(r, st, in); err != nil {
				b.Fatal(err)
			}
		}
	}
	var objects uint64 // heap objects at the last heap(): what a GC cycle marks
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		objects = ms.HeapObjects
		return ms.HeapAlloc
	}
	base := heap()
	baseObjects := objects
	apply(-1)
	var half uint64
	for k := range slots {
		apply(k)
		if k == slots/2-1 {
			half = heap()
			writeHeapProfile(b, *growthProfile, ".half")
		}
	}
	end := heap()
	endObjects := objects
	writeHeapProfile(b, *growthProfile, "")
	// The derived views kept between events, and the facts without them.
	for _, st := range states {
		st.cache = nil
	}
	facts := heap()
	writeHeapProfile(b, *growthProfile, ".facts")
	b.ReportMetric(float64(int64(end)-int64(facts))/float64(apps), "views-B/app")
	snaps, obs, failed := 0, 0, 0
	for _, st := range states {
		snaps += len(st.Snapshots)
		obs += len(st.Observations)
		failed += len(failedOnly(st))
	}
	b.ReportMetric(float64(failed)/float64(apps), "failed-records/app")
	b.ReportMetric(float64(end-base)/float64(apps), "heap-B/app")
	b.ReportMetric(float64(int64(endObjects)-int64(baseObjects))/float64(apps), "objects/app")
	b.ReportMetric(float64(int64(end)-int64(half))/float64(apps)/float64(slots-slots/2), "growth-B/app/slot")
	b.ReportMetric(float64(snaps)/float64(apps), "snapshots/app")
	b.ReportMetric(float64(obs)/float64(apps), "observations/app")
	runtime.KeepAlive(states)
}

// withFailures adds to slot k's events, every `every` slots, a snapshot
// of each completed one's claim that fails and never completes.
func withFailures(evs []events.Event, k, every int) []events.Event {
	if every <= 0 || k%every != 0 {
		return evs
	}
	out := slices.Clone(evs)
	for _, ev := range evs {
		if ev.Type() != events.TypeSnapshotCompleted {
			continue
		}
		p, err := events.Decode[events.SnapshotCompleted](ev)
		if err != nil {
			panic(err)
		}
		out = append(out, scenario.SnapshotFailedAt(p.Namespace, p.PVC, p.VolumeSnapshot+"-failed", p.CreationTime))
	}
	return out
}

// writeHeapProfile writes the heap profile to name+suffix (nothing
// without a name).
func writeHeapProfile(b *testing.B, name, suffix string) {
	if name == "" {
		return
	}
	f, err := os.Create(name + suffix)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.WriteHeapProfile(f); err != nil {
		b.Fatal(err)
	}
	_ = f.Close()
}
