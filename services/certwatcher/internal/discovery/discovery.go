package discovery

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	goruntime "runtime"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/stateguard/stateguard/pkg/events"

	"github.com/stateguard/stateguard/services/certwatcher/internal/certinfo"
	"github.com/stateguard/stateguard/services/certwatcher/internal/inventory"
)

// CertificateGVR is cert-manager's Certificate resource.
var CertificateGVR = schema.GroupVersionResource{Group: "cert-manager.io", Version: "v1", Resource: "certificates"}

const (
	indexSecretRefs  = "secret-refs"
	indexTLSSecrets  = "tls-secrets"
	indexCertSecrets = "cert-secret"
)

// Options configure discovery.
type Options struct {
	Client  kubernetes.Interface
	Dynamic dynamic.Interface // nil: no cert-manager support
	// Namespaces to watch; none means all.
	Namespaces     []string
	LabelSelector  string
	PEMKeyPatterns []string
	Store          *inventory.Store
	Log            *slog.Logger
	// Users turns off the pod, ReplicaSet and Ingress informers when false
	// (used by the benchmark that measures the Secret scan alone).
	WithoutUsers bool
	// CertManagerRecheck is how often, while cert-manager's Certificate
	// resource is not served, discovery asks the API server again, so that
	// cert-manager installed after certwatcher is picked up (0: a minute).
	CertManagerRecheck time.Duration

	// certificates is the resource watched for cert-manager Certificates;
	// CertificateGVR unless a test says otherwise.
	certificates schema.GroupVersionResource
}

// Discovery runs the informers.
type Discovery struct {
	o         Options
	secrets   []cache.SharedIndexInformer
	pods      []cache.SharedIndexInformer
	ingresses []cache.SharedIndexInformer
	rsets     []cache.SharedIndexInformer
	factories []informers.SharedInformerFactory
	cache     *certinfo.Cache
	shards    []chan func()
	done      <-chan struct{}
	strip     func(any) (any, error)

	// cert-manager Certificates: set up in New when served then, or later
	// by watchCertManager.
	certMu   sync.RWMutex
	certs    []cache.SharedIndexInformer
	dynFacts []dynamicinformer.DynamicSharedInformerFactory
	certMgr  bool

	// parsed holds what listSecrets parsed ahead of the event handlers, by
	// namespace/name, until the handler of that Secret takes it.
	parsedMu sync.Mutex
	parsed   map[string]*parsedSecret
}

// parsedSecret is the records of one Secret at one resourceVersion, parsed
// while the list was still being received; done closes when recs is set.
type parsedSecret struct {
	rv   string
	recs []inventory.Record
	done chan struct{}
}

// New prepares the informers; Start runs them.
func New(ctx context.Context, o Options) (*Discovery, error) {
	if o.Client == nil || o.Store == nil || o.Log == nil {
		return nil, errors.New("discovery: client, store and log are required")
	}
	d := &Discovery{o: o, cache: certinfo.NewCache(1 << 16), strip: stripSecret(o.PEMKeyPatterns), parsed: map[string]*parsedSecret{}}
	for range max(goruntime.GOMAXPROCS(0), 1) {
		d.shards = append(d.shards, make(chan func(), 256))
	}
	if d.o.certificates.Empty() {
		d.o.certificates = CertificateGVR
	}
	if d.o.CertManagerRecheck <= 0 {
		d.o.CertManagerRecheck = time.Minute
	}
	if o.Dynamic != nil {
		ok, err := served(o.Client, d.o.certificates)
		if err != nil {
			return nil, err
		}
		if ok {
			if err := d.addCertificateInformers(); err != nil {
				return nil, err
			}
		}
	}
	for _, ns := range d.namespaces() {
		for _, typ := range []corev1.SecretType{corev1.SecretTypeTLS, corev1.SecretTypeOpaque} {
			inf, err := d.secretInformer(ns, typ)
			if err != nil {
				return nil, err
			}
			d.secrets = append(d.secrets, inf)
		}
		if !o.WithoutUsers {
			f := informers.NewSharedInformerFactoryWithOptions(o.Client, 0, informers.WithNamespace(ns))
			pods := f.Core().V1().Pods().Informer()
			if err := pods.SetTransform(stripPod); err != nil {
				return nil, err
			}
			if err := pods.AddIndexers(cache.Indexers{indexSecretRefs: podSecretIndex}); err != nil {
				return nil, err
			}
			ing := f.Networking().V1().Ingresses().Informer()
			if err := ing.AddIndexers(cache.Indexers{indexTLSSecrets: ingressSecretIndex}); err != nil {
				return nil, err
			}
			rs := f.Apps().V1().ReplicaSets().Informer()
			if err := rs.SetTransform(stripReplicaSet); err != nil {
				return nil, err
			}
			d.pods, d.ingresses, d.rsets = append(d.pods, pods), append(d.ingresses, ing), append(d.rsets, rs)
			d.factories = append(d.factories, f)
		}
	}
	return d, nil
}

func (d *Discovery) namespaces() []string {
	if len(d.o.Namespaces) == 0 {
		return []string{metav1.NamespaceAll}
	}
	return d.o.Namespaces
}

// addCertificateInformers sets up the Certificate informers (not started).
func (d *Discovery) addCertificateInformers() error {
	var certs []cache.SharedIndexInformer
	var facts []dynamicinformer.DynamicSharedInformerFactory
	for _, ns := range d.namespaces() {
		df := dynamicinformer.NewFilteredDynamicSharedInformerFactory(d.o.Dynamic, 0, ns, nil)
		ci := df.ForResource(d.o.certificates).Informer()
		if err := ci.AddIndexers(cache.Indexers{indexCertSecrets: certificateSecretIndex}); err != nil {
			return err
		}
		certs, facts = append(certs, ci), append(facts, df)
	}
	d.certMu.Lock()
	d.certs, d.dynFacts, d.certMgr = certs, facts, true
	d.certMu.Unlock()
	return nil
}

// watchCertManager asks the API server every CertManagerRecheck whether
// it serves Certificates now and, once it does, starts their informers.
func (d *Discovery) watchCertManager(ctx context.Context) {
	t := time.NewTicker(d.o.CertManagerRecheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ok, err := served(d.o.Client, d.o.certificates)
		if err != nil {
			d.o.Log.Warn("checking for cert-manager", "error", err.Error())
			continue
		}
		if !ok {
			continue
		}
		if err := d.addCertificateInformers(); err != nil {
			d.o.Log.Error("cert-manager informers", "error", err.Error())
			return
		}
		d.certMu.RLock()
		for _, f := range d.dynFacts {
			f.Start(ctx.Done())
		}
		d.certMu.RUnlock()
		d.o.Log.Info("cert-manager Certificates served: watching them", "resource", d.o.certificates.String())
		return
	}
}

// NewClient returns the clientset certwatcher uses: protobuf, and no gzip
// on responses — the API server's compression of a large Secret list costs
// more CPU on both ends than it saves on a cluster network.
func NewClient(rc *rest.Config) (kubernetes.Interface, error) {
	c := rest.CopyConfig(rc)
	c.ContentType = "application/vnd.kubernetes.protobuf"
	c.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	c.DisableCompression = true
	return kubernetes.NewForConfig(c)
}

// served reports whether the API server serves the resource gvr.
func served(cs kubernetes.Interface, gvr schema.GroupVersionResource) (bool, error) {
	list, err := cs.Discovery().ServerResourcesForGroupVersion(gvr.GroupVersion().String())
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("discover cert-manager: %w", err)
	}
	for _, r := range list.APIResources {
		if r.Name == gvr.Resource {
			return true, nil
		}
	}
	return false, nil
}

// CertManagerEnabled reports whether cert-manager Certificates are watched
// (served at start, or detected since).
func (d *Discovery) CertManagerEnabled() bool {
	d.certMu.RLock()
	defer d.certMu.RUnlock()
	return d.certMgr
}

func (d *Discovery) secretInformer(ns string, typ corev1.SecretType) (cache.SharedIndexInformer, error) {
	sel := fields.OneTermEqualSelector("type", string(typ)).String()
	tweak := func(o *metav1.ListOptions) {
		o.FieldSelector = sel
		o.LabelSelector = d.o.LabelSelector
	}
	secrets := d.o.Client.CoreV1().Secrets(ns)
	pages := secretPages(d.o.Client.CoreV1().RESTClient(), secrets, ns)
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			tweak(&o)
			return d.listSecrets(ctx, pages, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			tweak(&o)
			return secrets.Watch(ctx, o)
		},
	}
	// A list, not the streaming watch-list (client-go's WatchListClient,
	// on by default): for 10,000 Secrets the watch-list cost 17–30% more
	// CPU in certwatcher and 25–40% more in the API server, and was slower
	// (see the README's benchmark notes).
	inf := cache.NewSharedIndexInformer(listOnly{lw}, &corev1.Secret{}, 0, cache.Indexers{})
	if err := inf.SetTransform(d.strip); err != nil {
		return nil, err
	}
	_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { d.secretChanged(obj) },
		UpdateFunc: func(_, obj any) { d.secretChanged(obj) },
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if s, ok := obj.(*corev1.Secret); ok {
				d.onShard(s, func() { d.o.Store.ReplaceSecret(s.Namespace, s.Name, nil) })
			}
		},
	})
	return inf, err
}

// onShard runs fn on the parsing worker of the Secret: Secrets are parsed
// in parallel, and the changes of one Secret in order.
func (d *Discovery) onShard(s *corev1.Secret, fn func()) {
	h := fnv.New32a()
	_, _ = h.Write([]byte(s.Namespace + "/" + s.Name))
	select {
	case d.shards[h.Sum32()%uint32(len(d.shards))] <- fn:
	case <-d.done:
	}
}

func (d *Discovery) secretChanged(obj any) {
	s, ok := obj.(*corev1.Secret)
	if !ok {
		return
	}
	d.onShard(s, func() { d.parseSecret(s) })
}

func (d *Discovery) parseSecret(s *corev1.Secret) {
	recs, ok := d.takeParsed(s)
	if !ok {
		recs = secretRecords(s, d.o.PEMKeyPatterns, d.cache)
	}
	for _, r := range recs {
		if r.Err != nil {
			d.o.Log.Warn("unreadable certificate", "namespace", s.Namespace, "secret", s.Name, "key", r.Source.Key, "reason", r.Err.Error())
		}
	}
	d.o.Store.ReplaceSecret(s.Namespace, s.Name, recs)
}

// Start runs the informers until ctx ends.
func (d *Discovery) Start(ctx context.Context) {
	d.done = ctx.Done()
	for _, ch := range d.shards {
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case fn := <-ch:
					fn()
				}
			}
		}()
	}
	for _, inf := range d.secrets {
		go inf.RunWithContext(ctx)
	}
	for _, f := range d.factories {
		f.Start(ctx.Done())
	}
	d.certMu.RLock()
	for _, f := range d.dynFacts {
		f.Start(ctx.Done())
	}
	watch := d.o.Dynamic != nil && !d.certMgr
	d.certMu.RUnlock()
	if watch {
		go d.watchCertManager(ctx)
	}
}

func (d *Discovery) informers() [][]cache.SharedIndexInformer {
	d.certMu.RLock()
	defer d.certMu.RUnlock()
	return [][]cache.SharedIndexInformer{d.secrets, d.pods, d.ingresses, d.rsets, d.certs}
}

// HasSynced reports whether every informer has listed.
func (d *Discovery) HasSynced() bool {
	for _, l := range d.informers() {
		for _, inf := range l {
			if !inf.HasSynced() {
				return false
			}
		}
	}
	return true
}

// WaitForSync waits until every informer has listed, bounded by ctx.
func (d *Discovery) WaitForSync(ctx context.Context) error {
	var synced []cache.InformerSynced
	for _, l := range d.informers() {
		for _, inf := range l {
			synced = append(synced, inf.HasSynced)
		}
	}
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return fmt.Errorf("informers not synced: %w", context.Cause(ctx))
	}
	return nil
}

// Users returns who uses the Secret namespace/name.
func (d *Discovery) Users(namespace, name string) events.CertificateUsers {
	var u events.CertificateUsers
	key := namespace + "/" + name
	rsOwner := replicaSetOwner(d.getReplicaSet)
	for _, inf := range d.pods {
		objs, _ := inf.GetIndexer().ByIndex(indexSecretRefs, key)
		for _, o := range objs {
			p := o.(*corev1.Pod)
			u.Pods = append(u.Pods, events.ObjectRef{Kind: "Pod", Namespace: p.Namespace, Name: p.Name})
			u.Workloads = append(u.Workloads, Workload(p, rsOwner))
		}
	}
	for _, inf := range d.ingresses {
		objs, _ := inf.GetIndexer().ByIndex(indexTLSSecrets, key)
		for _, o := range objs {
			i := o.(*networkingv1.Ingress)
			u.Ingresses = append(u.Ingresses, events.ObjectRef{Kind: "Ingress", Namespace: i.Namespace, Name: i.Name})
		}
	}
	u.Pods, u.Workloads, u.Ingresses = sortRefs(u.Pods), sortRefs(u.Workloads), sortRefs(u.Ingresses)
	return u
}

func (d *Discovery) getReplicaSet(namespace, name string) (*appsv1.ReplicaSet, error) {
	for _, inf := range d.rsets {
		obj, ok, err := inf.GetIndexer().GetByKey(namespace + "/" + name)
		if err == nil && ok {
			return obj.(*appsv1.ReplicaSet), nil
		}
	}
	return nil, apierrors.NewNotFound(appsv1.Resource("replicasets"), name)
}

// CertManager returns the cert-manager Certificate that owns the Secret, if
// any.
func (d *Discovery) CertManager(namespace, name string) *events.CertManagerInfo {
	d.certMu.RLock()
	certs := d.certs
	d.certMu.RUnlock()
	for _, inf := range certs {
		objs, _ := inf.GetIndexer().ByIndex(indexCertSecrets, namespace+"/"+name)
		for _, o := range objs {
			if u, ok := o.(*unstructured.Unstructured); ok {
				return CertManagerInfo(u)
			}
		}
	}
	return nil
}

// CertManagerInfo reads the facts of a cert-manager Certificate.
func CertManagerInfo(u *unstructured.Unstructured) *events.CertManagerInfo {
	info := &events.CertManagerInfo{Certificate: u.GetName()}
	if s, ok, _ := unstructured.NestedString(u.Object, "status", "notAfter"); ok {
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			info.NotAfter = &t
		}
	}
	if s, ok, _ := unstructured.NestedString(u.Object, "status", "renewalTime"); ok {
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			info.RenewalTime = &t
		}
	}
	return info
}

func podSecretIndex(obj any) ([]string, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return nil, nil
	}
	var keys []string
	for _, s := range SecretRefs(&p.Spec) {
		keys = append(keys, p.Namespace+"/"+s)
	}
	return keys, nil
}

func ingressSecretIndex(obj any) ([]string, error) {
	i, ok := obj.(*networkingv1.Ingress)
	if !ok {
		return nil, nil
	}
	var keys []string
	for _, s := range IngressTLSSecrets(i) {
		keys = append(keys, i.Namespace+"/"+s)
	}
	return keys, nil
}

func certificateSecretIndex(obj any) ([]string, error) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return nil, nil
	}
	s, _, _ := unstructured.NestedString(u.Object, "spec", "secretName")
	if s == "" {
		return nil, nil
	}
	return []string{u.GetNamespace() + "/" + s}, nil
}

// stripPod keeps the metadata and the parts of the spec that reference
// Secrets.
func stripPod(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	out := &corev1.Pod{ObjectMeta: p.ObjectMeta}
	out.ManagedFields = nil
	out.Spec.Volumes = p.Spec.Volumes
	strip := func(cs []corev1.Container) []corev1.Container {
		var r []corev1.Container
		for _, c := range cs {
			r = append(r, corev1.Container{Name: c.Name, Env: c.Env, EnvFrom: c.EnvFrom})
		}
		return r
	}
	out.Spec.Containers, out.Spec.InitContainers = strip(p.Spec.Containers), strip(p.Spec.InitContainers)
	return out, nil
}

func stripReplicaSet(obj any) (any, error) {
	rs, ok := obj.(*appsv1.ReplicaSet)
	if !ok {
		return obj, nil
	}
	out := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{
		Name: rs.Name, Namespace: rs.Namespace, UID: rs.UID, ResourceVersion: rs.ResourceVersion, OwnerReferences: rs.OwnerReferences,
	}}
	return out, nil
}

// listOnly makes the reflector list (in pages) instead of streaming the
// initial state through a watch.
type listOnly struct{ *cache.ListWatch }

func (listOnly) IsWatchListSemanticsUnSupported() bool { return true }

// listSecrets lists Secrets and parses their certificates on every core
// while the list is still being received (streamSecrets hands over each
// Secret as it is decoded); the event handlers then take the parsed
// records (takeParsed) instead of parsing again. The reflector's first list
// asks for resourceVersion 0 with a limit, which the API server's watch
// cache answers in one response (it ignores the limit); should the server
// page the answer (watch cache disabled), the pages are returned as one
// list, as the reflector expects.
func (d *Discovery) listSecrets(ctx context.Context, list pageLister, o metav1.ListOptions) (*corev1.SecretList, error) {
	out := &corev1.SecretList{}
	type job struct {
		s *corev1.Secret
		p *parsedSecret
	}
	work := make(chan job, 1<<14)
	for range max(goruntime.GOMAXPROCS(0), 1) {
		go func() {
			for j := range work {
				j.p.recs = secretRecords(j.s, d.o.PEMKeyPatterns, d.cache)
				close(j.p.done)
			}
		}()
	}
	defer close(work)
	var mine []string // keys of d.parsed this list added
	each := func(s *corev1.Secret) *corev1.Secret {
		// Keep what the informer's transform keeps, at once: private keys
		// and managed fields do not stay in memory for the rest of the list.
		obj, _ := d.strip(s)
		s = obj.(*corev1.Secret)
		key := s.Namespace + "/" + s.Name
		p := &parsedSecret{rv: s.ResourceVersion, done: make(chan struct{})}
		d.parsedMu.Lock()
		d.parsed[key] = p
		d.parsedMu.Unlock()
		mine = append(mine, key)
		work <- job{s, p}
		return s
	}
	for {
		page, err := list(ctx, o, each)
		if err != nil {
			d.dropParsed(mine)
			return nil, err
		}
		if out.ResourceVersion == "" {
			out.ListMeta = page.ListMeta
		}
		out.Items = append(out.Items, page.Items...)
		if page.Continue == "" {
			out.Continue = ""
			return out, nil
		}
		o.Continue = page.Continue
	}
}

// pageLister lists one page of Secrets, calling each with every Secret
// before it returns; the page holds what each returned.
type pageLister func(ctx context.Context, o metav1.ListOptions, each func(*corev1.Secret) *corev1.Secret) (*corev1.SecretList, error)

// secretPages lists the Secrets of namespace through rc as they arrive
// (streamSecrets) or, when the API server does not answer in protobuf or rc
// is not a REST client (fakes), with an ordinary List.
func secretPages(rc rest.Interface, secrets secretLister, namespace string) pageLister {
	return func(ctx context.Context, o metav1.ListOptions, each func(*corev1.Secret) *corev1.Secret) (*corev1.SecretList, error) {
		if c, ok := rc.(*rest.RESTClient); ok && c != nil {
			l, err := streamSecrets(ctx, rc, namespace, o, each)
			if !errors.Is(err, errNotProtobuf) {
				return l, err
			}
		}
		l, err := secrets.List(ctx, o)
		if err != nil {
			return nil, err
		}
		for i := range l.Items {
			// each may keep the Secret as it is, and a worker may be
			// reading it already.
			if kept := each(&l.Items[i]); kept != &l.Items[i] {
				l.Items[i] = *kept
			}
		}
		return l, nil
	}
}

// takeParsed returns, and forgets, the records listSecrets parsed for s at
// its resourceVersion, waiting for the parse to finish.
func (d *Discovery) takeParsed(s *corev1.Secret) ([]inventory.Record, bool) {
	key := s.Namespace + "/" + s.Name
	d.parsedMu.Lock()
	p, ok := d.parsed[key]
	if ok && p.rv == s.ResourceVersion {
		delete(d.parsed, key)
	}
	d.parsedMu.Unlock()
	if !ok || p.rv != s.ResourceVersion {
		return nil, false
	}
	select {
	case <-p.done:
		return p.recs, true
	case <-d.done:
		return nil, false
	}
}

// dropParsed forgets records parsed by a list that failed: no handler will
// take them.
func (d *Discovery) dropParsed(keys []string) {
	d.parsedMu.Lock()
	defer d.parsedMu.Unlock()
	for _, k := range keys {
		delete(d.parsed, k)
	}
}

type secretLister interface {
	List(ctx context.Context, o metav1.ListOptions) (*corev1.SecretList, error)
}
