package statecodec

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/correlator/internal/model"
	"github.com/stateguard/stateguard/services/correlator/internal/scenariotest"
)

// The codec writes exactly what encoding/json writes for the state, after
// every event of a run long enough to prune snapshots, and of the case study
// in a shuffled order with duplicates; and what it writes reads back equal.
func TestCodecWritesWhatEncodingJSONWrites(t *testing.T) {
	long := longRun(t, scenariotest.MixedStream{Apps: 2, PerNS: 2, Start: scenariotest.T0, ObserveEvery: 3})
	shuffled := scenariotest.CaseStudy()
	rng := rand.New(rand.NewPCG(1, 2))
	shuffled = append(shuffled, shuffled[:len(shuffled)/2]...)
	rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	var encrypted []events.Event
	for i, ev := range scenariotest.CaseStudy() {
		if ev.Type() == events.TypeSnapshotCompleted {
			ev = scenariotest.Encrypted(ev, []string{events.EncryptionEncrypted, events.EncryptionUnencrypted, events.EncryptionUnknown}[i%3],
				"StorageClass fast: ebs.csi.aws.com encrypted=\"true\"", "VolumeSnapshotClass snap: no parameter")
		}
		encrypted = append(encrypted, ev)
	}
	for name, evs := range map[string][]events.Event{"mixed stream": long, "shuffled case study": shuffled, "case study with encryption at rest": encrypted} {
		t.Run(name, func(t *testing.T) {
			var c Codec
			states := map[string]*model.State{}
			for i, ev := range evs {
				in, err := model.FromEvent(ev)
				if err != nil {
					t.Fatal(err)
				}
				st := states[in.Namespace]
				if st == nil {
					st = model.NewState(in.Namespace)
					states[in.Namespace] = st
				}
				if _, _, err := model.Apply(model.DefaultRules(), st, in); err != nil {
					t.Fatal(err)
				}
				if len(states) > 1 {
					t.Fatal("the run spans namespaces; the codec is per namespace")
				}
				want, err := json.Marshal(st)
				if err != nil {
					t.Fatal(err)
				}
				got, err := c.Encode(nil, st)
				if err != nil {
					t.Fatal(err)
				}
				if string(got) != string(want) {
					t.Fatalf("after event %d (%s) the codec wrote\n%s\nencoding/json\n%s", i, ev.ID(), got, want)
				}
				back := model.NewState(st.Namespace)
				if err := Decode(got, back); err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(st, back, cmpopts.EquateEmpty(), cmpopts.IgnoreUnexported(model.State{})); diff != "" {
					t.Fatalf("after event %d read back (-written +read):\n%s", i, diff)
				}
			}
		})
	}
}

// longRun is m's certificates and 45 slots of its events, long enough to
// prune snapshots, with facts that change snapshots already written
// (restore tests, failures, a second completion that wins, a PVC learnt
// late) for the first two applications of its first namespace.
func longRun(t *testing.T, m scenariotest.MixedStream) []events.Event {
	t.Helper()
	long := m.Certs()
	for k := range 45 {
		long = append(long, m.Slot(k)...)
		// A version built from a known commit (its workloads carry it).
		if k%9 == 4 {
			long = append(long, withCommit(t, scenariotest.Snapshot("bench-00000", "data-app-00000", fmt.Sprintf("commit-s%d", k),
				scenariotest.T0.Add(time.Duration(k)*time.Minute+time.Second), scenariotest.Run{App: "app-00000", Versions: []string{"v-commit"}}), "0123456789abcdef"))
		}
		// Facts that change a completed snapshot: a restore test passes, a
		// later one fails, the snapshot controller reports a failure.
		if k%7 == 3 {
			snap := fmt.Sprintf("app-00001-s%d", k-1)
			long = append(long, scenariotest.Verified("bench-00000", "data-app-00001", snap, true))
			long = append(long, scenariotest.SnapshotFailed("bench-00000", "data-app-00001", snap))
		}
		// Facts that change a snapshot already written: a restore test
		// reported before the snapshot's completion; a second completion
		// event that wins (smaller id) with another time and version; a
		// PVC learnt only from a later failure.
		if k%7 == 5 {
			long = append(long, scenariotest.Verified("bench-00000", "data-app-00001", fmt.Sprintf("app-00001-s%d", k+1), true))
			again := scenariotest.Snapshot("bench-00000", "data-app-00001", fmt.Sprintf("app-00001-s%d", k-1), scenariotest.T0.Add(time.Duration(k)*time.Minute),
				scenariotest.Run{App: "app-00001", Versions: []string{"v-again"}})
			again.SetID("a-" + again.ID())
			orphan := fmt.Sprintf("orphan-%d", k)
			long = append(long, again,
				scenariotest.Snapshot("bench-00000", "", orphan, scenariotest.T0.Add(time.Duration(k)*time.Hour), scenariotest.Run{App: "app-00001", Versions: []string{"v1"}}),
				scenariotest.SnapshotFailed("bench-00000", "data-orphan", orphan))
		}
	}
	return long
}

// withCommit is ev (a snapshot.completed) with its pods annotated with the
// commit they were built from.
func withCommit(t *testing.T, ev events.Event, commit string) events.Event {
	t.Helper()
	p, err := events.Decode[events.SnapshotCompleted](ev)
	if err != nil {
		t.Fatal(err)
	}
	for i := range p.Workloads {
		p.Workloads[i].Annotations = map[string]string{events.AnnotationCommit: commit}
	}
	ev = ev.Clone()
	if err := ev.SetData("application/json", p); err != nil {
		t.Fatal(err)
	}
	return ev
}

// appendString writes what encoding/json writes for any string: every byte
// value at every position of the eight-byte words it tests at once, and
// random strings of bytes (valid UTF-8 or not) drawn mostly from the ones
// that need escaping.
func TestAppendStringWritesWhatEncodingJSONWrites(t *testing.T) {
	check := func(s string) {
		t.Helper()
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendString([]byte("x"), s)
		if err != nil {
			t.Fatal(err)
		}
		if string(got[1:]) != string(want) || got[0] != 'x' {
			t.Fatalf("appendString(%q) = %s, encoding/json writes %s", s, got[1:], want)
		}
	}
	for v := range 256 {
		for length := 1; length <= 17; length++ {
			for p := range length {
				b := []byte(strings.Repeat("a", length))
				b[p] = byte(v)
				check(string(b))
			}
		}
	}
	alphabet := []byte("\x00\x1f\x20\"\\<>&\x7e\x7f\x80\xff\xe2\x80\xa8\xa9/az09-._")
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		b := make([]byte, r.IntN(40))
		for i := range b {
			if r.IntN(4) == 0 {
				b[i] = alphabet[r.IntN(len(alphabet))]
			} else {
				b[i] = byte('a' + r.IntN(26))
			}
		}
		check(string(b))
	}
}

// A state compressed for KV reads back as the same state; plain JSON (states
// written before compression) still reads; a damaged or oversized value is
// an error, not a state.
func TestCompressedStateReadsBack(t *testing.T) {
	st := steadyState(t)
	var c Codec
	js, err := c.Encode(nil, st)
	if err != nil {
		t.Fatal(err)
	}
	stored := Compress(nil, js)
	if len(stored) >= len(js)/2 {
		t.Errorf("compressed %d bytes of JSON to %d", len(js), len(stored))
	}
	for name, data := range map[string][]byte{"compressed": stored, "plain JSON": js} {
		got := model.NewState(st.Namespace)
		if err := Decode(data, got); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		again, err := json.Marshal(got)
		if err != nil {
			t.Fatal(err)
		}
		if string(again) != string(js) {
			t.Errorf("%s: the state read back differs from the one written", name)
		}
	}
	damaged := append([]byte(nil), stored...)
	damaged = damaged[:len(damaged)-len(damaged)/3]
	if err := Decode(damaged, model.NewState(st.Namespace)); err == nil {
		t.Error("a truncated compressed state decoded")
	}
	// A header that claims 1 GiB of JSON.
	bomb := append(append([]byte(nil), compressedPrefix...), 0x80, 0x80, 0x80, 0x80, 0x04)
	if err := Decode(bomb, model.NewState(st.Namespace)); err == nil || !strings.Contains(err.Error(), "expands to") {
		t.Errorf("oversized state: %v", err)
	}
}

// The hand-written envelope is what encoding/json writes for it.
func TestEnvelopeWritesWhatEncodingJSONWrites(t *testing.T) {
	for _, env := range []Envelope{
		{Layout: Layout, Gen: 1},
		{Layout: Layout, Gen: 7, Part: "a3"},
		{Layout: Layout, Gen: 1 << 40, Parts: map[string]uint64{"ff": 3, "00": 1, "7c": 1 << 33}},
		{Layout: Layout, Gen: 9, Parts: map[string]uint64{"01": 9}, Outbox: []Pending{{Seq: 4, Cause: "ev-1", CauseTime: time.Date(2026, 3, 1, 0, 0, 0, 5, time.UTC),
			RulesVersion: "sha256:ab", Decisions: []PendingDecision{{ID: "pin-1", Type: "t", Payload: json.RawMessage(`{"a":"<b>"}`)}}}}},
		// Payloads as json.Marshal writes them (copied as they are), and
		// others that encoding/json compacts or escapes.
		{Layout: Layout, Gen: 2, Outbox: []Pending{
			{Seq: 1, CauseTime: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), Decisions: []PendingDecision{
				{ID: "a", Type: "t", Payload: json.RawMessage(`{"reason":"not exploited: \"never\" exposed","n":[1,2]}`)},
				{ID: "b", Type: "t"}}},
			{Seq: 2, Cause: "ev-2", CauseTime: time.Date(2026, 3, 1, 0, 0, 0, 0, time.FixedZone("x", 3600))},
			{Seq: 3, CauseTime: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), Decisions: []PendingDecision{
				{ID: "c", Type: "t", Payload: json.RawMessage(`{"a": 1}`)}}},
			{Seq: 4, CauseTime: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), Decisions: []PendingDecision{
				{ID: "d", Type: "t", Payload: json.RawMessage("{\"a\":\"\u2028 é\"}")}}},
			{Seq: 5, CauseTime: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), Decisions: []PendingDecision{
				{ID: "e", Type: "t", Payload: json.RawMessage(`{"a":"x\\","b":"&"}`)}}},
		}},
	} {
		want, err := json.Marshal(env)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendEnvelope(nil, env)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("envelope:\n got %s\nwant %s", got, want)
		}
	}
}
