package engine

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"strings"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/correlator/internal/model"
	"github.com/stateguard/stateguard/services/correlator/internal/statecodec"
)

// The stored layout (statecodec.Layout): a namespace's state is the key
// ns.<ns> — its facts but those of PVCs, the ledger, the journal and the
// manifest of its parts — and one key ns.<ns>.pvc.<pvc> per PVC with the
// PVC's snapshots, workload observations and restores. A write stores the
// namespace's key (compare-and-set on its revision, which also keeps two
// replicas apart) and the keys of the PVCs that changed as one group of a
// JetStream atomic batch (events.KVWriter.PutGroups): all or nothing, so a
// crash between two keys cannot leave a torn state — the server drops a
// batch whose commit never came. The manifest maps each PVC to the write
// generation of its key, so a reader also detects a state read while
// another replica wrote it (and reads again).
//
// Chosen over a commit marker (parts written first, the namespace's key
// last naming the generation in force): that needs the parts' previous
// values kept (KV history) to read a state whose marker was not yet
// written, and one more round trip per write; nats-server 2.12+ stores an
// atomic batch with one disk sync, which the group commits use anyway.

// layoutGen is what KV holds of a namespace in the split layout: the
// namespace's write generation and each PVC key's generation.
type layoutGen struct {
	rev    uint64
	gen    uint64
	parts  map[string]uint64
	legacy bool // read from the single-key layout: the next write splits it
}

// layoutKey marks a bucket whose states were all migrated to the split
// layout.
const layoutKey = "layout"

var dnsName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$`)

// partKey is the key of a PVC's facts; a name that is no Kubernetes name
// (hand-written events) is hex-encoded so that it is always a valid key.
func partKey(ns, pvc string) string {
	if dnsName.MatchString(pvc) {
		return key(ns) + ".pvc." + pvc
	}
	return key(ns) + ".pvcx." + hex.EncodeToString([]byte(pvc))
}

// split takes the PVCs of en's state that changed and returns what goes in
// the namespace's key, the keys of those PVCs, and what KV will hold once
// they are stored. The caller holds en.mu.
func (s *store) split(en *entry) (*model.State, []events.KVPut, layoutGen, error) {
	en.wmu.Lock()
	cur := en.stored
	en.wmu.Unlock()
	next := layoutGen{gen: cur.gen + 1, parts: maps.Clone(cur.parts)}
	if next.parts == nil {
		next.parts = map[string]uint64{}
	}
	pvcs := en.st.TakeChangedParts()
	rest, facts := en.st.PartsOf(pvcs)
	puts := make([]events.KVPut, 0, len(pvcs))
	for _, pvc := range pvcs {
		p := facts[pvc]
		if p.Empty() {
			delete(next.parts, pvc)
		} else {
			next.parts[pvc] = next.gen
		}
		js, err := statecodec.EncodePart(en.ns, p)
		if err != nil {
			return nil, nil, next, fmt.Errorf("encode facts of PVC %s: %w", pvc, err)
		}
		data, err := statecodec.Wrap(nil, statecodec.Envelope{Layout: statecodec.Layout, Gen: next.gen, PVC: pvc}, js)
		if err != nil {
			return nil, nil, next, err
		}
		puts = append(puts, events.KVPut{Key: partKey(en.ns, pvc), Value: data, Any: true})
	}
	if len(next.parts) == 0 {
		next.parts = nil
	}
	return rest, puts, next, nil
}

// groupErr is the error of a group's write: its keys were stored together
// or not at all.
func groupErr(g []events.KVPut) error {
	for _, p := range g {
		if p.Err != nil {
			return p.Err
		}
	}
	return nil
}

// loadAttempts bounds the reads of a state another replica keeps writing
// while it is read.
const loadAttempts = 5

// errTorn says that the keys of a state did not belong to one write.
var errTorn = errors.New("the keys of the state belong to different writes")

// loadState reads a namespace's state from KV, in either layout; a state of
// the single-key layout has every PVC marked changed, so that its next
// write splits it. rev is 0 when there is none.
func loadState(ctx context.Context, kv jetstream.KeyValue, ns string) (*model.State, layoutGen, error) {
	var err error
	for range loadAttempts {
		var st *model.State
		var lg layoutGen
		st, lg, err = loadOnce(ctx, kv, ns)
		if !errors.Is(err, errTorn) {
			return st, lg, err
		}
	}
	return nil, layoutGen{}, fmt.Errorf("load state of %s: %w", ns, err)
}

func loadOnce(ctx context.Context, kv jetstream.KeyValue, ns string) (*model.State, layoutGen, error) {
	entry, err := kv.Get(ctx, key(ns))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return model.NewState(ns), layoutGen{}, nil
	}
	if err != nil {
		return nil, layoutGen{}, fmt.Errorf("load state of %s: %w", ns, err)
	}
	st := model.NewState(ns)
	env, err := statecodec.Unwrap(entry.Value(), st)
	if err != nil {
		return nil, layoutGen{}, events.Permanent(fmt.Errorf("decode state of %s: %w", ns, err))
	}
	lg := layoutGen{rev: entry.Revision(), gen: env.Gen, parts: env.Parts}
	if env.Layout == 0 {
		st.MarkAllPartsChanged()
		lg.legacy = true
		return st, lg, nil
	}
	parts, err := loadParts(ctx, kv, ns, env.Parts)
	if err != nil {
		return nil, layoutGen{}, err
	}
	for _, p := range parts {
		st.AddPart(p)
	}
	return st, lg, nil
}

// loadParts reads the PVCs' keys the manifest names, a few at a time.
func loadParts(ctx context.Context, kv jetstream.KeyValue, ns string, manifest map[string]uint64) ([]*model.PartFacts, error) {
	var (
		mu    sync.Mutex
		out   []*model.PartFacts
		errs  []error
		wg    sync.WaitGroup
		slots = make(chan struct{}, 16)
	)
	for pvc, gen := range manifest {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			p, err := loadPart(ctx, kv, ns, pvc, gen)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			out = append(out, p)
		})
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

func loadPart(ctx context.Context, kv jetstream.KeyValue, ns, pvc string, gen uint64) (*model.PartFacts, error) {
	entry, err := kv.Get(ctx, partKey(ns, pvc))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, fmt.Errorf("PVC %s of %s: %w (its key is missing)", pvc, ns, errTorn)
	}
	if err != nil {
		return nil, fmt.Errorf("load PVC %s of %s: %w", pvc, ns, err)
	}
	env, p, err := statecodec.DecodePart(entry.Value(), ns)
	if err != nil {
		return nil, events.Permanent(fmt.Errorf("decode PVC %s of %s: %w", pvc, ns, err))
	}
	if env.Gen != gen || env.PVC != pvc {
		return nil, fmt.Errorf("PVC %s of %s: generation %d, the namespace's names %d: %w", pvc, ns, env.Gen, gen, errTorn)
	}
	return p, nil
}

// namespaceOf returns the namespace of a state key ns.<ns> (not of a PVC's
// key ns.<ns>.pvc.<pvc>).
func namespaceOf(k string) (string, bool) {
	ns, ok := strings.CutPrefix(k, "ns.")
	return ns, ok && !strings.Contains(ns, ".")
}

// migrate writes every state of the single-key layout again, split, once
// per bucket (the layout key marks it done); the state writer must run.
// It returns how many states it rewrote.
func (s *store) migrate(ctx context.Context) (int, error) {
	if e, err := s.kv.Get(ctx, layoutKey); err == nil && string(e.Value()) == fmt.Sprint(statecodec.Layout) {
		return 0, nil
	} else if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, fmt.Errorf("read the state layout: %w", err)
	}
	lister, err := s.kv.ListKeys(ctx)
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		return 0, fmt.Errorf("list state keys: %w", err)
	}
	var nss []string
	if lister != nil {
		for k := range lister.Keys() {
			if ns, ok := namespaceOf(k); ok {
				nss = append(nss, ns)
			}
		}
	}
	n := 0
	for _, ns := range nss {
		en, err := s.acquire(ctx, ns)
		if err != nil {
			return n, fmt.Errorf("migrate state of %s: %w", ns, err)
		}
		en.wmu.Lock()
		legacy := en.stored.legacy
		en.wmu.Unlock()
		if err := s.release(ctx, en, legacy); err != nil {
			return n, fmt.Errorf("migrate state of %s: %w", ns, err)
		}
		if legacy {
			n++
		}
	}
	if _, err := s.kv.Put(ctx, layoutKey, []byte(fmt.Sprint(statecodec.Layout))); err != nil {
		return n, fmt.Errorf("mark the state layout: %w", err)
	}
	return n, nil
}
