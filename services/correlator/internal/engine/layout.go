package engine

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/correlator/internal/model"
	"github.com/stateguard/stateguard/services/correlator/internal/statecodec"
)

// The stored layout (statecodec.Layout): a namespace's state is the key
// ns.<ns> — its facts but those of PVCs, the ledger, the journal and the
// manifest of its parts — and up to Parts keys ns.<ns>.part.<xx> holding
// the snapshots, workload observations and restores of the PVCs whose name
// hashes to xx (partOf). A write stores the namespace's key (compare-and-set
// on its revision, which also keeps two replicas apart) and the parts whose
// PVCs changed as one group of a JetStream atomic batch
// (events.KVWriter.PutGroups): all or nothing, so a crash between two keys
// cannot leave a torn state — the server drops a batch whose commit never
// came. The manifest maps each part to the write generation that stored
// it, so a reader also detects a state read while another replica wrote it
// (and reads it again).
//
// Why an atomic batch rather than a commit marker (parts written first, the
// namespace's key last naming the generation in force): the marker needs
// each part's previous value kept (KV history) to read a state whose
// marker was not yet written, and a write in several round trips, while
// nats-server 2.12+ stores an atomic batch with one disk sync, which the
// group commits use anyway. Why parts by hash rather than one key per PVC:
// an atomic batch holds at most max_batch_size (1,000) messages, and one
// event can change the facts of every PVC of a namespace (closing an
// incident lets old snapshots of all of them go); with Parts keys a
// namespace's group is never larger than Parts+1, whatever its PVCs. At
// 1,000 PVCs in a namespace a part holds about four.

// Parts is the most part keys a namespace's PVCs are spread over.
const Parts = 256

// partOf names the part of a PVC: the FNV-1a hash of its name, in hex.
func partOf(pvc string) string {
	h := fnv.New32a()
	h.Write([]byte(pvc))
	return fmt.Sprintf("%02x", h.Sum32()%Parts)
}

// layoutGen is what KV holds of a namespace in the split layout: the
// namespace's write generation and each part's generation.
type layoutGen struct {
	rev    uint64
	gen    uint64
	parts  map[string]uint64
	legacy bool // read from the single-key layout: the next write splits it
}

// layoutKey marks a bucket whose states were all migrated to the split
// layout.
const layoutKey = "layout"

// partKey is the key of a part of a namespace's state.
func partKey(ns, part string) string { return key(ns) + ".part." + part }

// split takes the PVCs of en's state that changed and returns what goes in
// the namespace's key, the keys of their parts, and what KV will hold once
// they are stored. The caller holds en.mu.
func (s *store) split(en *entry) (*model.State, []events.KVPut, layoutGen, error) {
	en.wmu.Lock()
	cur := en.stored
	en.wmu.Unlock()
	next := layoutGen{gen: cur.gen + 1, parts: maps.Clone(cur.parts)}
	if next.parts == nil {
		next.parts = map[string]uint64{}
	}
	var names []string
	for _, pvc := range en.st.TakeChangedParts() {
		if p := partOf(pvc); !slices.Contains(names, p) {
			names = append(names, p)
		}
	}
	slices.Sort(names)
	rest, facts := en.st.PartsOf(partOf, names)
	puts := make([]events.KVPut, 0, len(names))
	for _, name := range names {
		p := facts[name]
		if p.Empty() {
			delete(next.parts, name)
		} else {
			next.parts[name] = next.gen
		}
		js, err := statecodec.EncodePart(en.ns, p)
		if err != nil {
			return nil, nil, next, fmt.Errorf("encode part %s of %s: %w", name, en.ns, err)
		}
		data, err := statecodec.Wrap(nil, statecodec.Envelope{Layout: statecodec.Layout, Gen: next.gen, Part: name}, js)
		if err != nil {
			return nil, nil, next, err
		}
		puts = append(puts, events.KVPut{Key: partKey(en.ns, name), Value: data, Any: true})
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

// loadParts reads the parts the manifest names, a few at a time.
func loadParts(ctx context.Context, kv jetstream.KeyValue, ns string, manifest map[string]uint64) ([]*model.PartFacts, error) {
	var (
		mu    sync.Mutex
		out   []*model.PartFacts
		errs  []error
		wg    sync.WaitGroup
		slots = make(chan struct{}, 16)
	)
	for part, gen := range manifest {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			p, err := loadPart(ctx, kv, ns, part, gen)
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

func loadPart(ctx context.Context, kv jetstream.KeyValue, ns, part string, gen uint64) (*model.PartFacts, error) {
	entry, err := kv.Get(ctx, partKey(ns, part))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, fmt.Errorf("part %s of %s: %w (its key is missing)", part, ns, errTorn)
	}
	if err != nil {
		return nil, fmt.Errorf("load part %s of %s: %w", part, ns, err)
	}
	env, p, err := statecodec.DecodePart(entry.Value(), ns)
	if err != nil {
		return nil, events.Permanent(fmt.Errorf("decode part %s of %s: %w", part, ns, err))
	}
	if env.Gen != gen || env.Part != part {
		return nil, fmt.Errorf("part %s of %s: generation %d, the namespace's names %d: %w", part, ns, env.Gen, gen, errTorn)
	}
	return p, nil
}

// namespaceOf returns the namespace of a state key ns.<ns> (not of a part
// ns.<ns>.part.<xx>).
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
