package observer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/snapshotter/api/v1alpha1"
	"github.com/stateguard/stateguard/services/snapshotter/internal/controller"
	"github.com/stateguard/stateguard/services/snapshotter/internal/metrics"
	"github.com/stateguard/stateguard/services/snapshotter/internal/workload"
)

// Observer publishes workload.observed for every protected PVC.
type Observer struct {
	// Config is the API server's; Run builds its informers from it.
	Config *rest.Config
	// Owners resolves a pod's ReplicaSet to its Deployment (a direct
	// client: the snapshotter may get ReplicaSets, not watch them).
	Owners client.Reader
	// Events publishes the observations.
	Events events.Publisher
	// Store keeps the last observation of each PVC.
	Store *Store
	// Clock gives the observed time of a change.
	Clock clock.PassiveClock
	// Log is the logger.
	Log *slog.Logger
	// Metrics are updated as observations are published; nil disables them.
	Metrics *metrics.Metrics
	// Namespace limits the observer to one namespace; "" watches all.
	Namespace string
	// Resync is the period of the full resync (default 10m).
	Resync time.Duration
	// WithoutSecrets turns off the metadata informer of kubernetes.io/tls
	// Secrets: observations then list no Secrets.
	WithoutSecrets bool

	mu     sync.Mutex
	last   map[string]events.WorkloadObserved // by Key
	owners map[string]*events.ObjectRef       // ReplicaSet namespace/name → owner
}

// item is one PVC to observe; resync asks to publish even when nothing
// changed.
type item struct {
	namespace, pvc string
	resync         bool
}

var secretMeta = func() *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	return m
}

// Run observes until ctx ends: it loads what was last published, starts
// the informers, makes a full resync (which publishes what changed while
// no snapshotter observed, with the time of now), then follows the
// informers and resyncs every Resync.
func (o *Observer) Run(ctx context.Context) error {
	resync := o.Resync
	if resync <= 0 {
		resync = 10 * time.Minute
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Metrics == nil {
		o.Metrics = metrics.New(nil)
	}
	last, bad, err := o.Store.Load(ctx)
	if err != nil {
		return err
	}
	for _, e := range bad {
		o.Log.Warn("stored observation skipped", "error", e.Error())
	}
	o.mu.Lock()
	o.last, o.owners = last, map[string]*events.ObjectRef{}
	o.mu.Unlock()

	c, err := o.newCache()
	if err != nil {
		return err
	}
	q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[item]())
	defer q.ShutDown()
	if err := o.watch(ctx, c, q); err != nil {
		return err
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cacheDone := make(chan error, 1)
	go func() { cacheDone <- c.Start(cctx) }()
	if !c.WaitForCacheSync(ctx) {
		cancel()
		return errors.Join(fmt.Errorf("observer informers not synced: %w", context.Cause(ctx)), <-cacheDone)
	}
	go func() {
		<-ctx.Done()
		q.ShutDown()
	}()
	go o.resyncEvery(ctx, c, q, resync)
	for o.processNext(ctx, c, q) {
	}
	cancel()
	if err := <-cacheDone; err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

func (o *Observer) newCache() (cache.Cache, error) {
	scheme, err := controller.Scheme()
	if err != nil {
		return nil, err
	}
	opts := cache.Options{Scheme: scheme, DefaultTransform: cache.TransformStripManagedFields()}
	if o.Namespace != "" {
		opts.DefaultNamespaces = map[string]cache.Config{o.Namespace: {}}
	}
	if !o.WithoutSecrets {
		// Only the names of TLS Secrets, filtered by the API server: no
		// Secret data ever reaches the snapshotter.
		opts.ByObject = map[client.Object]cache.ByObject{
			secretMeta(): {Field: fields.OneTermEqualSelector("type", string(corev1.SecretTypeTLS))},
		}
	}
	return cache.New(o.Config, opts)
}

// watch registers the informers' handlers: a pod's claims, a PVC, every
// PVC of a namespace whose policies or TLS Secrets changed.
func (o *Observer) watch(ctx context.Context, c cache.Cache, q workqueue.TypedRateLimitingInterface[item]) error {
	pods, err := c.GetInformer(ctx, &corev1.Pod{})
	if err != nil {
		return fmt.Errorf("pod informer: %w", err)
	}
	onPod := func(obj any) {
		if p, ok := unwrap(obj).(*corev1.Pod); ok {
			for _, v := range p.Spec.Volumes {
				if v.PersistentVolumeClaim != nil {
					q.Add(item{namespace: p.Namespace, pvc: v.PersistentVolumeClaim.ClaimName})
				}
			}
		}
	}
	if _, err := pods.AddEventHandler(handler(onPod)); err != nil {
		return err
	}
	pvcs, err := c.GetInformer(ctx, &corev1.PersistentVolumeClaim{})
	if err != nil {
		return fmt.Errorf("pvc informer: %w", err)
	}
	if _, err := pvcs.AddEventHandler(handler(func(obj any) {
		if p, ok := unwrap(obj).(*corev1.PersistentVolumeClaim); ok {
			q.Add(item{namespace: p.Namespace, pvc: p.Name})
		}
	})); err != nil {
		return err
	}
	onNamespace := func(obj any) {
		if m, ok := unwrap(obj).(metav1.Object); ok {
			o.enqueueNamespace(ctx, c, q, m.GetNamespace(), false)
		}
	}
	policies, err := c.GetInformer(ctx, &v1alpha1.SnapshotPolicy{})
	if err != nil {
		return fmt.Errorf("snapshot policy informer: %w", err)
	}
	if _, err := policies.AddEventHandler(handler(onNamespace)); err != nil {
		return err
	}
	if o.WithoutSecrets {
		return nil
	}
	secrets, err := c.GetInformer(ctx, secretMeta())
	if err != nil {
		return fmt.Errorf("tls secret informer: %w", err)
	}
	// A Secret's type never changes: only its creation and deletion
	// matter (a rotation updates it, and changes nothing here).
	_, err = secrets.AddEventHandler(toolscache.ResourceEventHandlerFuncs{AddFunc: onNamespace, DeleteFunc: onNamespace})
	return err
}

func handler(f func(any)) toolscache.ResourceEventHandler {
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc:    f,
		UpdateFunc: func(_, obj any) { f(obj) },
		DeleteFunc: f,
	}
}

func unwrap(obj any) any {
	if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		return d.Obj
	}
	return obj
}

// enqueueNamespace queues every PVC of namespace (every PVC when
// namespace is "") and every PVC observed before.
func (o *Observer) enqueueNamespace(ctx context.Context, c cache.Cache, q workqueue.TypedRateLimitingInterface[item], namespace string, resync bool) {
	var list corev1.PersistentVolumeClaimList
	if err := c.List(ctx, &list, client.InNamespace(namespace)); err != nil {
		o.Log.Warn("list pvcs from the cache", "namespace", namespace, "error", err.Error())
	}
	for _, p := range list.Items {
		q.Add(item{namespace: p.Namespace, pvc: p.Name, resync: resync})
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, prev := range o.last {
		if namespace == "" || prev.Namespace == namespace {
			q.Add(item{namespace: prev.Namespace, pvc: prev.PVC, resync: resync})
		}
	}
}

// resyncEvery queues a full resync now and every period.
func (o *Observer) resyncEvery(ctx context.Context, c cache.Cache, q workqueue.TypedRateLimitingInterface[item], period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		o.mu.Lock()
		o.owners = map[string]*events.ObjectRef{} // ReplicaSets are read again once a period
		o.mu.Unlock()
		o.enqueueNamespace(ctx, c, q, o.Namespace, true)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (o *Observer) processNext(ctx context.Context, c cache.Cache, q workqueue.TypedRateLimitingInterface[item]) bool {
	it, shutdown := q.Get()
	if shutdown {
		return false
	}
	defer q.Done(it)
	err := o.observe(ctx, c, it)
	if err == nil {
		q.Forget(it)
		return true
	}
	if ctx.Err() != nil {
		return true
	}
	o.Metrics.ObservationErrors.Inc()
	o.Log.Warn("observe pvc", "namespace", it.namespace, "pvc", it.pvc, "error", err.Error())
	// Retried as a resync: what was stored but perhaps not published is
	// published then.
	it.resync = true
	q.AddRateLimited(it)
	return true
}

// observe observes one PVC and publishes what Next decides.
func (o *Observer) observe(ctx context.Context, c cache.Cache, it item) error {
	key := Key(it.namespace, it.pvc)
	o.mu.Lock()
	prev, tracked := o.last[key]
	o.mu.Unlock()

	protected, err := o.protected(ctx, c, it.namespace, it.pvc)
	if err != nil {
		return err
	}
	if !protected {
		if !tracked {
			return nil
		}
		// Deleted, or no longer selected: forgotten, without an event
		// (README, "workload observations").
		if err := o.Store.Delete(ctx, it.namespace, it.pvc); err != nil {
			return err
		}
		o.mu.Lock()
		delete(o.last, key)
		o.mu.Unlock()
		o.Log.Info("pvc no longer protected: observations stop", "namespace", it.namespace, "pvc", it.pvc)
		return nil
	}
	pods, err := workload.Pods(ctx, c, it.namespace, it.pvc)
	if err != nil {
		return err
	}
	var ownerErr error
	observed := Observe(pods, func(p *corev1.Pod) *events.ObjectRef {
		ref, err := o.owner(ctx, p)
		ownerErr = errors.Join(ownerErr, err)
		return ref
	}, func(namespace, name string) bool { return o.isTLS(ctx, c, namespace, name) })
	if ownerErr != nil {
		return ownerErr
	}
	var prevp *events.WorkloadObserved
	if tracked {
		prevp = &prev
	}
	next, publish := Next(prevp, it.namespace, it.pvc, observed, o.Clock.Now(), it.resync)
	if !publish {
		return nil
	}
	changed := prevp == nil || !SameContent(prev, next)
	if changed {
		// Stored first: a crash before the publish leaves the new set
		// stored, and the start-up resync publishes it (same id).
		if err := o.Store.Put(ctx, next); err != nil {
			return err
		}
		o.mu.Lock()
		o.last[key] = next
		o.mu.Unlock()
	}
	ev, err := o.Events.NewEvent(events.TypeWorkloadObserved, events.ObservationID(next), next)
	if err != nil {
		return err
	}
	if err := o.Events.Publish(ctx, ev); err != nil {
		return fmt.Errorf("publish %s: %w", events.TypeWorkloadObserved, err)
	}
	kind := "resync"
	if changed {
		kind = "change"
		o.Log.Info("workload observed", "namespace", it.namespace, "pvc", it.pvc, "event_id", ev.ID(), "pods", len(next.Pods), "versions", versions(next.Pods))
	}
	o.Metrics.Observations.WithLabelValues(kind).Inc()
	return nil
}

// protected reports whether the PVC exists and a policy selects it.
func (o *Observer) protected(ctx context.Context, c cache.Cache, namespace, name string) (bool, error) {
	var pvc corev1.PersistentVolumeClaim
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &pvc); err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("get pvc %s/%s: %w", namespace, name, err)
	}
	if pvc.DeletionTimestamp != nil {
		return false, nil
	}
	var policies v1alpha1.SnapshotPolicyList
	if err := c.List(ctx, &policies, client.InNamespace(namespace)); err != nil {
		return false, fmt.Errorf("list snapshot policies in %s: %w", namespace, err)
	}
	return Selected(&pvc, policies.Items), nil
}

// owner resolves a pod's owner, remembering ReplicaSets until the next
// full resync.
func (o *Observer) owner(ctx context.Context, p *corev1.Pod) (*events.ObjectRef, error) {
	ref := metav1.GetControllerOf(p)
	if ref == nil || ref.Kind != "ReplicaSet" {
		return workload.Owner(ctx, o.Owners, p)
	}
	k := p.Namespace + "/" + ref.Name
	o.mu.Lock()
	got, ok := o.owners[k]
	o.mu.Unlock()
	if ok {
		return got, nil
	}
	got, err := workload.Owner(ctx, o.Owners, p)
	if err != nil {
		return nil, err
	}
	o.mu.Lock()
	o.owners[k] = got
	o.mu.Unlock()
	return got, nil
}

func (o *Observer) isTLS(ctx context.Context, c cache.Cache, namespace, name string) bool {
	if o.WithoutSecrets {
		return false
	}
	return c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, secretMeta()) == nil
}

func versions(pods []events.ObservedPod) string {
	var out []string
	for _, p := range pods {
		v := p.App + " " + p.Version
		if len(out) == 0 || out[len(out)-1] != v {
			out = append(out, v)
		}
	}
	return strings.Join(out, ", ")
}
