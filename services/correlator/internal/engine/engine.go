package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/correlator/internal/model"
	"github.com/stateguard/stateguard/services/correlator/internal/statecodec"
)

// Options configure an Engine.
type Options struct {
	Client *events.Client
	Rules  model.Rules
	// RulesVersion, when set, is carried by every decision as the
	// events.ExtRulesVersion extension (config.RulesVersion of the rules
	// file), so an audit replays each decision under its own rules.
	RulesVersion string
	// Bucket is the KV bucket of the state; Replicas its replication.
	Bucket   string
	Replicas int
	// Workers is how many events of each stream are handled at once; they
	// share the group commits of the state, so more workers mean fewer,
	// larger KV write batches under load (default 512).
	Workers int
	// Consumer prefixes the durable consumer names.
	Consumer string
	Log      *slog.Logger
	// Registerer registers the metrics (may be nil).
	Registerer prometheus.Registerer
	// CacheSize bounds the namespace states kept in memory (default
	// 16384); a namespace evicted is read again from KV when it comes back.
	CacheSize int
	// OnPublished, when set, sees the decisions of each event once
	// JetStream stored them, with the time of the event that caused them
	// (tests and benchmarks use it). A record of the outbox published again
	// (after a failed publication, or by another process after a crash) is
	// seen again; JetStream stored it once if inside its duplicate window.
	OnPublished func(namespace string, causeTime time.Time, ds []model.Decision)
}

// Engine correlates events into decisions.
type Engine struct {
	o     Options
	kv    jetstream.KeyValue
	m     *metrics
	store *store
	join  *joiner

	// batcher merges the decisions of concurrent handlers into shared
	// atomic batches while the engine runs.
	batcher atomic.Pointer[events.Batcher]

	mu         sync.Mutex
	subs       []*events.Subscription
	stopWriter context.CancelFunc
	writerDone chan struct{}
	stopSweep  context.CancelFunc
	sweepDone  sync.WaitGroup
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
		o.Workers = 512
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
		o.CacheSize = 16384
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
	if err := allowAtomicPublish(ctx, o.Client.JetStream(), "KV_"+o.Bucket); err != nil {
		return nil, err
	}
	m := newMetrics(o.Registerer)
	e := &Engine{o: o, kv: kv, m: m, store: newStore(kv, o.Client.KVWriter(o.Bucket), o.CacheSize, m),
		join: newJoiner(bucketKV{kv}, o.Rules, o.Registerer)}
	e.store.publish = e.publishRecords
	if o.Registerer != nil {
		if err := o.Registerer.Register(posture{e}); err != nil {
			return nil, fmt.Errorf("register posture metrics: %w", err)
		}
	}
	return e, nil
}

// Consumers are the durable consumers the engine runs: stream, name suffix
// and the subjects it reads (its own decisions share two of the streams).
var Consumers = []struct {
	Stream, Suffix string
	Types          []string
}{
	{events.StreamSARIF, "sarif", []string{events.TypeSARIFUploaded}},
	{events.StreamSnapshot, "snapshot", []string{events.TypeSnapshotCompleted, events.TypeSnapshotFailed, events.TypeSnapshotVerified, events.TypeWorkloadObserved}},
	{events.StreamCertificate, "certificate", []string{events.TypeCertificateExpiring, events.TypeCertificateObserved, events.TypeCertificateRotated, events.TypeCertificateRotationFailed}},
	{events.StreamDecision, "facts", []string{events.TypeRestoreCompleted, events.TypeIncidentResolved, events.TypeFindingDismissed}},
}

// ConsumerConfigs are the engine's durable consumers, named
// <consumer>-<suffix>, handling workers events at once (the bootstrap
// subcommand creates them).
func ConsumerConfigs(consumer string, workers int) []events.ConsumerConfig {
	if consumer == "" {
		consumer = "correlator"
	}
	if workers < 1 {
		workers = 512
	}
	cfgs := make([]events.ConsumerConfig, 0, len(Consumers))
	for _, c := range Consumers {
		cfg := events.ConsumerConfig{Stream: c.Stream, Name: consumer + "-" + c.Suffix,
			Concurrency: workers, MaxAckPending: max(1000, 4*workers)}
		for _, t := range c.Types {
			cfg.Subjects = append(cfg.Subjects, events.SubjectOf(t))
		}
		cfgs = append(cfgs, cfg)
	}
	return cfgs
}

// allowAtomicPublish lets the state be written in atomic batches (the KV
// API creates the bucket's stream without). Without it the writes still go
// through, one by one.
func allowAtomicPublish(ctx context.Context, js jetstream.JetStream, stream string) error {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("stream %s: %w", stream, err)
	}
	cfg := s.CachedInfo().Config
	if cfg.AllowAtomicPublish {
		return nil
	}
	cfg.AllowAtomicPublish = true
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("allow atomic publish on %s: %w", stream, err)
	}
	return nil
}

// bucketKV is the state bucket as the joiner uses it (joinKV).
type bucketKV struct{ kv jetstream.KeyValue }

func (b bucketKV) Get(ctx context.Context, key string) ([]byte, uint64, error) {
	e, err := b.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", key, err)
	}
	return e.Value(), e.Revision(), nil
}

func (b bucketKV) Put(ctx context.Context, key string, value []byte) error {
	if _, err := b.kv.Put(ctx, key, value); err != nil {
		return fmt.Errorf("write %s: %w", key, err)
	}
	return nil
}

func (b bucketKV) CAS(ctx context.Context, key string, value []byte, rev uint64) error {
	var err error
	if rev == 0 {
		_, err = b.kv.Create(ctx, key, value)
	} else {
		_, err = b.kv.Update(ctx, key, value, rev)
	}
	var apiErr *jetstream.APIError
	switch {
	case errors.Is(err, jetstream.ErrKeyExists),
		errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence:
		return errConflict
	case err != nil:
		return fmt.Errorf("write %s: %w", key, err)
	}
	return nil
}

// Start runs the state writer, the decision batcher and the durable
// consumers, each handling Workers events at once.
func (e *Engine) Start(ctx context.Context) error {
	e.batcher.Store(e.o.Client.NewBatcher())
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.store.run(wctx)
	}()
	go e.store.dropIdleViews(wctx, viewsIdle)
	e.mu.Lock()
	e.stopWriter, e.writerDone = cancel, done
	e.mu.Unlock()
	n, err := e.store.migrate(ctx)
	if err != nil {
		return errors.Join(err, e.Stop(ctx))
	}
	if n > 0 {
		e.o.Log.InfoContext(ctx, "state migrated to the split layout", "namespaces", n)
	}
	sweepCtx, stopSweep := context.WithCancel(wctx)
	e.mu.Lock()
	e.stopSweep = stopSweep
	e.mu.Unlock()
	e.sweepDone.Add(1)
	go func() {
		defer e.sweepDone.Done()
		if err := e.sweepOutboxes(sweepCtx); err != nil && sweepCtx.Err() == nil {
			e.o.Log.WarnContext(ctx, "outbox sweep at start", "error", err)
		}
	}()
	for _, cfg := range ConsumerConfigs(e.o.Consumer, e.o.Workers) {
		sub, err := e.o.Client.Consume(ctx, cfg, e.Handle)
		if err != nil {
			return errors.Join(err, e.Stop(ctx))
		}
		e.mu.Lock()
		e.subs = append(e.subs, sub)
		e.mu.Unlock()
	}
	return nil
}

// Stop stops the consumers, letting the events in hand finish (their state
// is written), then the decision batcher and the state writer.
func (e *Engine) Stop(ctx context.Context) error {
	e.mu.Lock()
	subs, stop, done, stopSweep := e.subs, e.stopWriter, e.writerDone, e.stopSweep
	e.subs, e.stopWriter, e.stopSweep = nil, nil, nil
	e.mu.Unlock()
	var errs []error
	for _, s := range subs {
		errs = append(errs, s.Stop(ctx))
	}
	if stopSweep != nil {
		stopSweep()
	}
	e.sweepDone.Wait()
	if b := e.batcher.Swap(nil); b != nil {
		b.Close()
	}
	if stop != nil {
		stop()
		<-done
		// What the handlers left dirty — the removal of published
		// decisions from the outbox — is stored before the process goes,
		// so a restart does not publish them again.
		e.store.flush(ctx, e.store.takeDirty())
	}
	return errors.Join(errs...)
}

// stageHook, set by BenchmarkMixedStream's latency phase only, is told
// when an event reaches each stage of its path: its handler starts
// ("start"), its function runs on the namespace's state ("apply"), its
// decisions' publication begins once the state is in KV ("pub") and ends
// ("published"), its handler returns ("done").
var stageHook atomic.Pointer[func(stage, id string)]

// stage tells stageHook, if set, that event id reached stage.
func stage(name, id string) {
	if h := stageHook.Load(); h != nil {
		(*h)(name, id)
	}
}

var namespaceRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

func key(ns string) string { return "ns." + ns }

// ValidNamespace reports whether ns is a Kubernetes namespace name: the
// engine dead-letters an event for any other.
func ValidNamespace(ns string) bool { return namespaceRE.MatchString(ns) }

// Handle applies one event. It is the consumers' handler: it returns once
// the state the event's decisions follow from is in KV and, after that,
// the decisions are published (store.PublishAfterCommit), so an
// acknowledged event is never lost and no decision reaches the streams
// that the committed state did not make.
func (e *Engine) Handle(ctx context.Context, ev events.Event) error {
	stage("start", ev.ID())
	defer stage("done", ev.ID())
	in, err := model.FromEvent(ev)
	if errors.Is(err, model.ErrIgnored) {
		e.m.events.WithLabelValues(ev.Type(), "ignored").Inc()
		return nil
	}
	if err != nil {
		e.m.events.WithLabelValues(ev.Type(), "invalid").Inc()
		return err
	}
	if in.Join != nil {
		// An upload naming no application: joined by repository, or kept
		// until a workload names it (joiner).
		if in.Join.Namespace != "" && !ValidNamespace(in.Join.Namespace) {
			e.m.events.WithLabelValues(ev.Type(), "invalid").Inc()
			return events.Permanent(fmt.Errorf("event %s: namespace %q is not a Kubernetes namespace name", ev.ID(), in.Join.Namespace))
		}
		return e.join.upload(ctx, in, func(in model.Input) error { return e.applyInput(ctx, ev, in) })
	}
	if err := e.applyInput(ctx, ev, in); err != nil {
		return err
	}
	if in.Targets != nil {
		return e.join.observed(ctx, in.Targets, func(in model.Input) error { return e.applyInput(ctx, ev, in) })
	}
	return nil
}

// applyInput applies one input of ev to its namespace's state.
func (e *Engine) applyInput(ctx context.Context, ev events.Event, in model.Input) error {
	if !ValidNamespace(in.Namespace) {
		e.m.events.WithLabelValues(ev.Type(), "invalid").Inc()
		return events.Permanent(fmt.Errorf("event %s: namespace %q is not a Kubernetes namespace name", ev.ID(), in.Namespace))
	}
	applied := false
	err := e.store.Update(ctx, in.Namespace, func(st *model.State) (bool, *statecodec.Pending, error) {
		stage("apply", ev.ID())
		changed, rec, err := e.apply(ev, in, st)
		applied = changed && err == nil
		return changed, rec, err
	})
	if err != nil {
		return err
	}
	if applied {
		e.m.events.WithLabelValues(ev.Type(), "applied").Inc()
	}
	return nil
}

// UploadJoin is the join record of an upload that named no application:
// joined to which apps, or not joined and why. found is false for an
// upload the correlator did not have to join (or has not seen).
func (e *Engine) UploadJoin(ctx context.Context, id string) (rec model.UploadJoin, found bool, err error) {
	return e.join.Record(ctx, id)
}

// apply applies in, the input of ev, to the namespace's state st and
// returns the decisions it calls for as an outbox record (Handle's
// function for store.Update, which publishes them once the state is
// stored): changed is false for a duplicate.
func (e *Engine) apply(ev events.Event, in model.Input, st *model.State) (changed bool, rec *statecodec.Pending, err error) {
	ds, changed, err := model.Apply(e.o.Rules, st, in)
	if err != nil {
		return false, nil, events.Permanent(err)
	}
	if !changed {
		e.m.events.WithLabelValues(ev.Type(), "duplicate").Inc()
		return false, nil, nil
	}
	if len(ds) == 0 {
		return true, nil, nil
	}
	rec = &statecodec.Pending{Cause: ev.ID(), CauseTime: ev.Time(), RulesVersion: e.o.RulesVersion,
		Decisions: make([]statecodec.PendingDecision, 0, len(ds))}
	for _, d := range ds {
		payload, err := json.Marshal(d.Payload)
		if err != nil {
			return false, nil, events.Permanent(fmt.Errorf("decision %s: %w", d.ID, err))
		}
		rec.Decisions = append(rec.Decisions, statecodec.PendingDecision{ID: d.ID, Type: d.Type, Payload: payload})
	}
	return true, rec, nil
}

// publishRecords publishes records of a namespace's outbox in their order
// and returns once JetStream stored every decision (store.publish).
func (e *Engine) publishRecords(ctx context.Context, ns string, recs []statecodec.Pending) error {
	// Decisions of concurrent handlers share atomic batches: with
	// sync_interval: always one disk sync stores many of them.
	publish := e.o.Client.PublishBatch
	if b := e.batcher.Load(); b != nil {
		publish = b.Publish
	}
	for _, r := range recs {
		stage("pub", r.Cause)
	}
	parts, err := e.pinsFirst(recs)
	if err != nil {
		return err
	}
	for _, part := range parts {
		if err := publish(ctx, part...); err != nil {
			return fmt.Errorf("publish decisions for %s: %w", ns, err)
		}
	}
	for _, r := range recs {
		stage("published", r.Cause)
		ds := make([]model.Decision, 0, len(r.Decisions))
		for _, d := range r.Decisions {
			e.m.decisions.WithLabelValues(d.Type).Inc()
			e.o.Log.InfoContext(ctx, "decision", "namespace", ns, "type", d.Type, "event_id", d.ID)
			ds = append(ds, model.Decision{ID: d.ID, Type: d.Type, Payload: d.Payload})
		}
		e.m.latency.Observe(time.Since(r.CauseTime).Seconds())
		if e.o.OnPublished != nil {
			e.o.OnPublished(ns, r.CauseTime, ds)
		}
	}
	return nil
}

// pinsFirst cuts the records' decisions, in order, into the publications
// that carry them: one, unless a record recommends a restore — then its
// pins close the publication before it, and its other decisions start the
// next only once JetStream acknowledged them, so a consumer that acts on a
// recommendation never races retention (pins and recommendations travel
// on different streams, whose batches are otherwise stored concurrently).
// Within each stream the decisions keep the records' order.
func (e *Engine) pinsFirst(recs []statecodec.Pending) ([][]events.Event, error) {
	var parts [][]events.Event
	var cur []events.Event
	for _, r := range recs {
		recommends := slices.ContainsFunc(r.Decisions, func(d statecodec.PendingDecision) bool {
			return d.Type == events.TypeRestoreRecommended
		})
		var rest []events.Event
		for _, d := range r.Decisions {
			ev, err := e.o.Client.NewEvent(d.Type, d.ID, d.Payload)
			if err != nil {
				return nil, events.Permanent(fmt.Errorf("decision %s: %w", d.ID, err))
			}
			if r.RulesVersion != "" {
				ev.SetExtension(events.ExtRulesVersion, r.RulesVersion)
			}
			if recommends && d.Type != events.TypeSnapshotPinRequested {
				rest = append(rest, ev)
			} else {
				cur = append(cur, ev)
			}
		}
		if recommends {
			if len(cur) > 0 {
				parts = append(parts, cur)
			}
			cur = rest
		}
	}
	if len(cur) > 0 {
		parts = append(parts, cur)
	}
	return parts, nil
}

// sweepOutboxes publishes, at start, the outboxes that the stored states
// hold — decisions of a process that died between its commit and its
// publication — for namespaces that no event may come to soon. It reads
// the namespaces' keys once (not their parts, and only the outbox of
// each); states with an empty outbox cost one read.
func (e *Engine) sweepOutboxes(ctx context.Context) error {
	w, err := e.kv.WatchFiltered(ctx, []string{"ns.*"}, jetstream.IgnoreDeletes())
	if err != nil {
		return fmt.Errorf("watch state keys: %w", err)
	}
	defer func() { _ = w.Stop() }()
	var pending []string
	for en := range w.Updates() {
		if en == nil {
			break
		}
		ns, ok := namespaceOf(en.Key())
		if !ok {
			continue
		}
		out, err := statecodec.PeekOutbox(en.Value())
		if err != nil {
			e.o.Log.WarnContext(ctx, "outbox sweep: state unreadable", "namespace", ns, "error", err)
			continue
		}
		if len(out) > 0 {
			pending = append(pending, ns)
		}
	}
	var errs []error
	for _, ns := range pending {
		if err := e.store.PublishAfterCommit(ctx, ns); err != nil {
			errs = append(errs, fmt.Errorf("outbox of %s: %w", ns, err))
		}
	}
	if len(pending) > 0 {
		e.o.Log.InfoContext(ctx, "outboxes published at start", "namespaces", len(pending))
	}
	return errors.Join(errs...)
}

// State reads a namespace's state from KV (never from the cache, which
// handlers mutate). ok is false when the namespace is unknown.
func (e *Engine) State(ctx context.Context, ns string) (st *model.State, ok bool, err error) {
	st, rev, err := readState(ctx, e.kv, ns)
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
		if ns, ok := namespaceOf(k); ok {
			out = append(out, ns)
		}
	}
	return out, nil
}

// Rules are the rules in use.
func (e *Engine) Rules() model.Rules { return e.o.Rules }

// Revisions lists the namespaces with state and the revision of each
// one's key (it changes with every write of the namespace): the API keeps
// the views it derived until it does.
func (e *Engine) Revisions(ctx context.Context) (map[string]uint64, error) {
	w, err := e.kv.WatchFiltered(ctx, []string{"ns.*"}, jetstream.MetaOnly(), jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("list state revisions: %w", err)
	}
	defer func() { _ = w.Stop() }()
	out := map[string]uint64{}
	for {
		select {
		case en, ok := <-w.Updates():
			if !ok || en == nil {
				return out, nil
			}
			if ns, ok := namespaceOf(en.Key()); ok {
				out[ns] = en.Revision()
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
