package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/harness/natstest"
	"github.com/stateguard/stateguard/services/correlator/internal/model"
	scenario "github.com/stateguard/stateguard/services/correlator/internal/scenariotest"
)

// crashAtomic is how the crashing writer sends the keys of a group before
// it dies: as the JetStream atomic batch the store uses (true), or key by
// key as a layout without all-or-nothing groups would (false: the mutation
// the torn-write property must catch).
const crashAtomic = true

// crashingWriter is the state writer of a process that dies in the middle
// of a write: the first `before` write calls go through; in the next one,
// of the first group of several keys it sends only the first `keys`
// messages — no commit — and from then on nothing leaves the process.
type crashingWriter struct {
	real   *events.KVWriter
	nc     *nats.Conn
	kv     jetstream.KeyValue
	bucket string
	keys   int

	mu      sync.Mutex
	before  int
	dead    bool
	crashed chan struct{}
}

var errDead = errors.New("the process is dead")

func (w *crashingWriter) PutGroups(ctx context.Context, groups [][]events.KVPut) events.KVBatches {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.dead && w.before > 0 {
		w.before--
		return w.real.PutGroups(ctx, groups)
	}
	if !w.dead {
		for _, g := range groups {
			if len(g) > 1 {
				w.crash(ctx, g)
				break
			}
		}
	}
	for _, g := range groups {
		for i := range g {
			g[i].Err = errDead
		}
	}
	return events.KVBatches{}
}

// crash sends the first keys of g and dies.
func (w *crashingWriter) crash(ctx context.Context, g []events.KVPut) {
	n := min(w.keys, len(g)-1)
	id := "crash-" + strconv.Itoa(n)
	for i, p := range g[:n] {
		if !crashAtomic {
			_, _ = w.kv.Put(ctx, p.Key, p.Value)
			continue
		}
		m := nats.NewMsg("$KV." + w.bucket + "." + p.Key)
		m.Data = p.Value
		m.Header.Set("Nats-Batch-Id", id)
		m.Header.Set("Nats-Batch-Sequence", strconv.Itoa(i+1))
		if !p.Any {
			m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(p.Rev, 10))
		}
		_ = w.nc.PublishMsg(m)
	}
	_ = w.nc.Flush()
	w.dead = true
	close(w.crashed)
}

// The torn-write property: a correlator killed in the middle of writing a
// namespace's keys (after any number of writes, any number of the group's
// keys sent) leaves a state that reads whole — the one before the write —
// and a correlator started after it ends, on the same streams and bucket,
// with the state an undisturbed run computes from the same events.
func TestCrashMidWriteNeverTearsTheState(t *testing.T) {
	m := scenario.MixedStream{Apps: 6, PerNS: 3, Start: scenario.T0, ObserveEvery: 3}
	evs := m.Certs()
	for k := range 24 {
		evs = append(evs, m.Slot(k)...)
	}
	nss := []string{}
	for i := 0; i < m.Apps; i += m.PerNS {
		ns, _ := m.Names(i)
		nss = append(nss, ns)
	}
	want := map[string]*model.State{}
	for _, ns := range nss {
		want[ns] = model.NewState(ns)
	}
	for _, ev := range evs {
		in, err := model.FromEvent(ev)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := model.Apply(model.DefaultRules(), want[in.Namespace], in); err != nil {
			t.Fatal(err)
		}
	}
	rng := rand.New(rand.NewPCG(14, 17))
	for trial := range 4 {
		before, keys := 2+rng.IntN(30), 1+rng.IntN(3)
		t.Run(fmt.Sprintf("after %d writes, %d keys sent", before, keys), func(t *testing.T) {
			crashTrial(t, evs, nss, want, before, keys, trial)
		})
	}
}

func crashTrial(t *testing.T, evs []events.Event, nss []string, want map[string]*model.State, before, keys, trial int) {
	srv := natstest.Run(t)
	c1 := natstest.Client(t, srv)
	e1, err := New(t.Context(), Options{Client: c1, Rules: model.DefaultRules(), Workers: 4})
	if err != nil {
		t.Fatal(err)
	}
	w := &crashingWriter{real: c1.KVWriter("stateguard-correlator"), nc: c1.Conn(), kv: e1.kv, bucket: "stateguard-correlator",
		keys: keys, before: before, crashed: make(chan struct{})}
	e1.store.w = w
	if err := e1.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	shuffled := append([]events.Event(nil), evs...)
	rand.New(rand.NewPCG(uint64(trial), 1)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	publish(t, c1, shuffled...)
	select {
	case <-w.crashed:
	case <-time.After(2 * time.Minute):
		t.Fatal("the writer never crashed: fewer writes than expected")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_ = e1.Stop(ctx)

	// What the dead process left reads whole.
	for _, ns := range nss {
		if _, _, err := loadState(t.Context(), e1.kv, ns); err != nil {
			t.Errorf("state of %s after the crash: %v", ns, err)
		}
	}

	// A new process: a new connection, the same bucket; the consumers are
	// reset, so every event comes again.
	c2 := natstest.Client(t, srv)
	for _, cons := range Consumers {
		if err := c2.JetStream().DeleteConsumer(t.Context(), cons.Stream, "correlator-"+cons.Suffix); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			t.Fatal(err)
		}
	}
	e2 := startEngineWith(t, Options{Client: c2, Rules: model.DefaultRules(), Workers: 4})
	drain(t, c2)
	for _, ns := range nss {
		got, _, err := e2.State(t.Context(), ns)
		if err != nil {
			t.Fatalf("state of %s after the restart: %v", ns, err)
		}
		wv, _ := json.Marshal(model.Derive(model.DefaultRules(), want[ns]))
		gv, _ := json.Marshal(model.Derive(model.DefaultRules(), got))
		if diff := cmp.Diff(string(wv), string(gv)); diff != "" {
			t.Errorf("%s: view (-undisturbed +restarted after the crash):\n%s", ns, diff)
		}
		if diff := cmp.Diff(want[ns].Ledger.InForce(), got.Ledger.InForce()); diff != "" {
			t.Errorf("%s: decisions in force (-undisturbed +restarted):\n%s", ns, diff)
		}
	}
}
