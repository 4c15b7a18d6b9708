package statecodec

import (
	"fmt"
	"hash/fnv"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/correlator/internal/model"
	"github.com/stateguard/stateguard/services/correlator/internal/scenariotest"
)

// EncodeSplitPart takes over the kept encodings of a part's PVCs while
// they did not change: after every event of a long run of six
// applications whose PVCs share two parts (snapshots completed, pruned,
// verified, failed, completed again with another version, a PVC learnt
// late, observations, restores), the parts written as the store writes them (the
// changed PVCs' parts only) read back as the facts PartsOf gives for them;
// and a state read back is written from its own facts.
func TestKeptPartEncodingsFollowTheFacts(t *testing.T) {
	partOf := func(pvc string) string {
		h := fnv.New32a()
		h.Write([]byte(pvc))
		return fmt.Sprintf("%02x", h.Sum32()%2)
	}
	evs := longRun(t, scenariotest.MixedStream{Apps: 6, PerNS: 6, Start: scenariotest.T0, ObserveEvery: 3})
	// Restores of two PVCs from their earlier snapshots, one reported again
	// by a later event.
	restores := []events.Event{
		scenariotest.Restored("bench-00000", "data-app-00002", "app-00002-s3", scenariotest.T0.Add(10*time.Minute)),
		scenariotest.Restored("bench-00000", "data-app-00004", "app-00004-s5", scenariotest.T0.Add(20*time.Minute)),
	}
	evs = slices.Insert(evs, len(evs)/3, restores...)
	evs = slices.Insert(evs, 2*len(evs)/3, restores[0])
	var c Codec
	st := model.NewState("bench-00000")
	kept, written, restored := 0, 0, 0
	write := func(i int, st *model.State) {
		t.Helper()
		changed := st.TakeChangedParts()
		var names []string
		for _, pvc := range changed {
			if p := partOf(pvc); !slices.Contains(names, p) {
				names = append(names, p)
			}
		}
		_, facts := st.PartsOf(partOf, names)
		for _, name := range names {
			got, empty, err := c.EncodeSplitPart(nil, st.Namespace, name, st.PartPVCs(partOf, name), func(pvc string) bool {
				_, found := slices.BinarySearch(changed, pvc)
				return found
			}, st.PVCFacts)
			if err != nil {
				t.Fatal(err)
			}
			want := facts[name]
			if empty != want.Empty() {
				t.Fatalf("after event %d part %s: empty %t, want %t", i, name, empty, want.Empty())
			}
			back := model.NewState(st.Namespace)
			if err := Decode(got, back); err != nil {
				t.Fatalf("after event %d part %s: %v\n%s", i, name, err, got)
			}
			read := &model.PartFacts{Snapshots: back.Snapshots, Observations: back.Observations, Restores: back.Restores, PinGeneration: back.Journal.PinGeneration}
			if diff := cmp.Diff(want, read, cmpopts.EquateEmpty()); diff != "" {
				t.Fatalf("after event %d part %s reads back (-facts +read):\n%s", i, name, diff)
			}
			written++
			restored += len(want.Restores)
			kept += len(c.kept[name])
		}
	}
	for i, ev := range evs {
		in, err := model.FromEvent(ev)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := model.Apply(model.DefaultRules(), st, in); err != nil {
			t.Fatal(err)
		}
		write(i, st)
		if i == len(evs)/2 {
			// Read back: the same names, other snapshots.
			js, err := c.Encode(nil, st)
			if err != nil {
				t.Fatal(err)
			}
			back := model.NewState(st.Namespace)
			if err := Decode(js, back); err != nil {
				t.Fatal(err)
			}
			back.MarkAllPartsChanged()
			st = back
			write(i, st)
		}
	}
	if written == 0 || kept == 0 || restored == 0 {
		t.Fatalf("%d parts written, %d PVC encodings kept, %d restores written: the test does not exercise the kept encodings", written, kept, restored)
	}
}
