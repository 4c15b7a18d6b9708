package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/correlator/internal/model"
)

// Options configure an Engine.
type Options struct {
	Client *events.Client
	Rules  model.Rules
	// Bucket is the KV bucket of the state; Replicas its replication.
	Bucket   string
	Replicas int
	// Workers is how many events of each stream are handled at once.
	Workers int
	// Consumer prefixes the durable consumer names.
	Consumer string
	Log      *slog.Logger
	// Registerer registers the metrics (may be nil).
	Registerer prometheus.Registerer
	// CacheSize bounds the namespace states kept in memory (default 4096).
	CacheSize int
	// OnPublished, when set, sees every batch of decisions once JetStream
	// stored it, with the event that caused it (tests and benchmarks use it).
	OnPublished func(namespace string, cause events.Event, ds []model.Decision)
}

// Engine correlates events into decisions.
type Engine struct {
	o       Options
	kv      jetstream.KeyValue
	m       *metrics
	stripes [64]sync.Mutex

	mu    sync.Mutex
	cache map[string]cached
	subs  []*events.Subscription
}

type cached struct {
	st  *model.State
	rev uint64
}

// New opens (or creates) the KV bucket.
func New(ctx context.Context, o Options) (*Engine, error) {
	if o.Client == nil {
		return nil, errors.New("engine: nil client")
	}
	if err := o.Rules.Validate(); err != nil {
		return nil, err
	}
	if o.Bucket == "" {
		o.Bucket = "stateguard-correlator"
	}
	if o.Workers < 1 {
		o.Workers = 1
	}
	if o.Replicas < 1 {
		o.Replicas = 1
	}
	if o.Consumer == "" {
		o.Consumer = "correlator"
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.CacheSize <= 0 {
		o.CacheSize = 4096
	}
	kv, err := o.Client.JetStream().CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      o.Bucket,
		Description: "stateguard correlator state, one key per namespace",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    o.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("kv bucket %s: %w", o.Bucket, err)
	}
	return &Engine{o: o, kv: kv, m: newMetrics(o.Registerer), cache: map[string]cached{}}, nil
}

// Consumers are the durable consumers the engine runs: stream, name suffix
// and the subjects it reads (its own decisions share two of the streams).
var Consumers = []struct {
	Stream, Suffix string
	Types          []string
}{
	{events.StreamSARIF, "sarif", []string{events.TypeSARIFUploaded}},
	{events.StreamSnapshot, "snapshot", []string{events.TypeSnapshotCompleted, events.TypeSnapshotFailed, events.TypeSnapshotVerified}},
	{events.StreamCertificate, "certificate", []string{events.TypeCertificateExpiring, events.TypeCertificateRotated, events.TypeCertificateRotationFailed}},
}

// Start runs Workers subscriptions of each durable consumer.
func (e *Engine) Start(ctx context.Context) error {
	for _, c := range Consumers {
		cfg := events.ConsumerConfig{Stream: c.Stream, Name: e.o.Consumer + "-" + c.Suffix, MaxAckPending: 1000}
		for _, t := range c.Types {
			cfg.Subjects = append(cfg.Subjects, events.SubjectOf(t))
		}
		for range e.o.Workers {
			sub, err := e.o.Client.Consume(ctx, cfg, e.Handle)
			if err != nil {
				return errors.Join(err, e.Stop(ctx))
			}
			e.mu.Lock()
			e.subs = append(e.subs, sub)
			e.mu.Unlock()
		}
	}
	return nil
}

// Stop stops the consumers, letting the events in hand finish.
func (e *Engine) Stop(ctx context.Context) error {
	e.mu.Lock()
	subs := e.subs
	e.subs = nil
	e.mu.Unlock()
	var errs []error
	for _, s := range subs {
		errs = append(errs, s.Stop(ctx))
	}
	return errors.Join(errs...)
}

var namespaceRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

func key(ns string) string { return "ns." + ns }

// Handle applies one event. It is the consumers' handler.
func (e *Engine) Handle(ctx context.Context, ev events.Event) error {
	in, err := model.FromEvent(ev)
	if errors.Is(err, model.ErrIgnored) {
		e.m.events.WithLabelValues(ev.Type(), "ignored").Inc()
		return nil
	}
	if err != nil {
		e.m.events.WithLabelValues(ev.Type(), "invalid").Inc()
		return err
	}
	if !namespaceRE.MatchString(in.Namespace) {
		e.m.events.WithLabelValues(ev.Type(), "invalid").Inc()
		return events.Permanent(fmt.Errorf("event %s: namespace %q is not a Kubernetes namespace name", ev.ID(), in.Namespace))
	}
	stripe := e.stripe(in.Namespace)
	stripe.Lock()
	defer stripe.Unlock()
	for range 10 {
		st, rev, err := e.load(ctx, in.Namespace)
		if err != nil {
			return err
		}
		ds, changed, err := model.Apply(e.o.Rules, st, in)
		if err != nil {
			e.forget(in.Namespace)
			return events.Permanent(err)
		}
		if !changed {
			e.m.events.WithLabelValues(ev.Type(), "duplicate").Inc()
			return nil
		}
		if err := e.publish(ctx, in.Namespace, ds); err != nil {
			e.forget(in.Namespace)
			return err
		}
		data, err := json.Marshal(st)
		if err != nil {
			e.forget(in.Namespace)
			return fmt.Errorf("encode state of %s: %w", in.Namespace, err)
		}
		var newRev uint64
		if rev == 0 {
			newRev, err = e.kv.Create(ctx, key(in.Namespace), data)
		} else {
			newRev, err = e.kv.Update(ctx, key(in.Namespace), data, rev)
		}
		if errors.Is(err, jetstream.ErrKeyExists) {
			// Another replica wrote the namespace: start again from its state.
			e.m.conflicts.Inc()
			e.forget(in.Namespace)
			continue
		}
		if err != nil {
			e.forget(in.Namespace)
			return fmt.Errorf("store state of %s: %w", in.Namespace, err)
		}
		e.m.stateSize.Observe(float64(len(data)))
		e.m.events.WithLabelValues(ev.Type(), "applied").Inc()
		if len(ds) > 0 {
			e.m.latency.Observe(time.Since(ev.Time()).Seconds())
			if e.o.OnPublished != nil {
				e.o.OnPublished(in.Namespace, ev, ds)
			}
		}
		e.remember(in.Namespace, st, newRev)
		return nil
	}
	return fmt.Errorf("state of %s: too many write conflicts", in.Namespace)
}

func (e *Engine) publish(ctx context.Context, ns string, ds []model.Decision) error {
	if len(ds) == 0 {
		return nil
	}
	evs := make([]events.Event, 0, len(ds))
	for _, d := range ds {
		ev, err := e.o.Client.NewEvent(d.Type, d.ID, d.Payload)
		if err != nil {
			return events.Permanent(fmt.Errorf("decision %s: %w", d.ID, err))
		}
		evs = append(evs, ev)
	}
	if err := e.o.Client.Publish(ctx, evs...); err != nil {
		return fmt.Errorf("publish decisions for %s: %w", ns, err)
	}
	for _, d := range ds {
		e.m.decisions.WithLabelValues(d.Type).Inc()
		e.o.Log.Info("decision", "namespace", ns, "type", d.Type, "event_id", d.ID)
	}
	return nil
}

func (e *Engine) stripe(ns string) *sync.Mutex {
	h := fnv.New32a()
	h.Write([]byte(ns))
	return &e.stripes[h.Sum32()%uint32(len(e.stripes))]
}

// load returns the namespace's state for a handler holding its stripe: from
// the cache, else from KV. The caller may mutate it.
func (e *Engine) load(ctx context.Context, ns string) (*model.State, uint64, error) {
	e.mu.Lock()
	c, ok := e.cache[ns]
	e.mu.Unlock()
	if ok {
		return c.st, c.rev, nil
	}
	return e.read(ctx, ns)
}

func (e *Engine) read(ctx context.Context, ns string) (*model.State, uint64, error) {
	entry, err := e.kv.Get(ctx, key(ns))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return model.NewState(ns), 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("load state of %s: %w", ns, err)
	}
	st := model.NewState(ns)
	if err := json.Unmarshal(entry.Value(), st); err != nil {
		return nil, 0, events.Permanent(fmt.Errorf("decode state of %s: %w", ns, err))
	}
	return st, entry.Revision(), nil
}

func (e *Engine) forget(ns string) {
	e.mu.Lock()
	delete(e.cache, ns)
	e.mu.Unlock()
}

func (e *Engine) remember(ns string, st *model.State, rev uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.cache) >= e.o.CacheSize {
		for k := range e.cache { // evict an arbitrary tenth
			delete(e.cache, k)
			if len(e.cache) < e.o.CacheSize*9/10 {
				break
			}
		}
	}
	e.cache[ns] = cached{st: st, rev: rev}
}

// State reads a namespace's state from KV (never from the cache, which
// handlers mutate). ok is false when the namespace is unknown.
func (e *Engine) State(ctx context.Context, ns string) (st *model.State, ok bool, err error) {
	st, rev, err := e.read(ctx, ns)
	return st, rev != 0, err
}

// Namespaces lists the namespaces with state.
func (e *Engine) Namespaces(ctx context.Context) ([]string, error) {
	lister, err := e.kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list state keys: %w", err)
	}
	var out []string
	for k := range lister.Keys() {
		if ns, ok := strings.CutPrefix(k, "ns."); ok {
			out = append(out, ns)
		}
	}
	return out, nil
}

// Rules are the rules in use.
func (e *Engine) Rules() model.Rules { return e.o.Rules }
