package statecodec

import (
	"fmt"
	"hash/fnv"
	"slices"
	"testing"

	"github.com/stateguard/stateguard/services/correlator/internal/model"
	"github.com/stateguard/stateguard/services/correlator/internal/scenariotest"
)

// EncodeSplitPart takes over the kept encodings of a part's snapshots while
// their PVC did not change: after every event of a long run of six
// applications whose PVCs share two parts (snapshots completed, pruned,
// verified, failed, completed again with another version, a PVC learnt
// late), the parts written as the store writes them (the changed PVCs'
// parts only) are byte for byte what a codec without kept encodings
// writes; and a state read back (other snapshots, equal names) is written
// from its own facts.
func TestKeptPartEncodingsFollowTheFacts(t *testing.T) {
	partOf := func(pvc string) string {
		h := fnv.New32a()
		h.Write([]byte(pvc))
		return fmt.Sprintf("%02x", h.Sum32()%2)
	}
	evs := longRun(t, scenariotest.MixedStream{Apps: 6, PerNS: 6, Start: scenariotest.T0, ObserveEvery: 3})
	var c Codec
	st := model.NewState("bench-00000")
	kept, written := 0, 0
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
			got, err := c.EncodeSplitPart(nil, st.Namespace, name, facts[name], func(pvc string) bool {
				_, found := slices.BinarySearch(changed, pvc)
				return found
			})
			if err != nil {
				t.Fatal(err)
			}
			want, err := EncodePart(st.Namespace, facts[name])
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Fatalf("after event %d part %s was written\n%s\nwithout kept encodings\n%s", i, name, got, want)
			}
			written++
			if k := c.kept[name]; k != nil {
				kept += len(k.snaps)
			}
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
	if written == 0 || kept == 0 {
		t.Fatalf("%d parts written, %d snapshot encodings kept: the test does not exercise the kept encodings", written, kept)
	}
}
