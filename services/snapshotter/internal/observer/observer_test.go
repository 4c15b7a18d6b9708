package observer_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/google/go-cmp/cmp"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/harness/natstest"
	"github.com/stateguard/stateguard/services/snapshotter/api/v1alpha1"
	"github.com/stateguard/stateguard/services/snapshotter/internal/controller"
	"github.com/stateguard/stateguard/services/snapshotter/internal/metrics"
	"github.com/stateguard/stateguard/services/snapshotter/internal/observer"
)

// The pods below are made by the cluster's controllers from one-replica
// Deployments, one per version, and run by KWOK's node, which reports the
// image digest (kubetest's pod-ready Stage: the sha256 of the reference).

type fixture struct {
	t     *testing.T
	ns    string
	kc    client.Client
	ev    *events.Client
	store *observer.Store
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	scheme, err := controller.Scheme()
	if err != nil {
		t.Fatal(err)
	}
	kc, err := client.New(cluster.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	srv := natstest.Run(t)
	ev := natstest.Client(t, srv, events.WithSource("/stateguard/snapshotter"))
	store, err := observer.OpenStore(t.Context(), ev.JetStream(), "", 1)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, ns: cluster.Namespace(t, nil), kc: kc, ev: ev, store: store}
}

// start runs an observer with fresh process state over the fixture's KV
// bucket; the returned function stops it and waits.
func (f *fixture) start() (*metrics.Metrics, func()) {
	f.t.Helper()
	m := metrics.New(nil)
	o := &observer.Observer{
		Config: cluster.Config, Owners: f.kc, Events: f.ev, Store: f.store, Log: slog.New(slog.DiscardHandler),
		Metrics: m, Namespace: f.ns, Resync: time.Hour,
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx) }()
	stop := func() {
		cancel()
		if err := <-done; err != nil {
			f.t.Errorf("observer: %v", err)
		}
	}
	f.t.Cleanup(func() {
		select {
		case <-ctx.Done():
		default:
			stop()
		}
	})
	return m, stop
}

func (f *fixture) create(objs ...client.Object) {
	f.t.Helper()
	for _, o := range objs {
		o.SetNamespace(f.ns)
		if err := f.kc.Create(f.t.Context(), o); err != nil {
			f.t.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
	}
}

func pvc(name string, labels map[string]string) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
}

func policy(name string, selector map[string]string) *v1alpha1.SnapshotPolicy {
	return &v1alpha1.SnapshotPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.SnapshotPolicySpec{
			Schedule:    "@daily",
			PVCSelector: metav1.LabelSelector{MatchLabels: selector},
			Retention:   v1alpha1.Retention{KeepLast: 3},
		},
	}
}

func tlsSecret(name string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{corev1.TLSCertKey: []byte("cert"), corev1.TLSPrivateKeyKey: []byte("key")},
	}
}

// runPod creates the one-replica Deployment name of app db at version,
// whose pod mounts claim (and the given Secrets: the first as a volume, the
// others through envFrom), and waits until its pod runs with the digest.
func (f *fixture) runPod(name, claim, version string, secrets ...string) {
	f.t.Helper()
	labels := map[string]string{
		"app.kubernetes.io/name": "db", "app.kubernetes.io/version": version, "app.kubernetes.io/part-of": "shop",
		"app.kubernetes.io/instance": name,
	}
	spec := corev1.PodSpec{
		Containers: []corev1.Container{{Name: "db", Image: image(version)}},
		Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim},
		}}},
	}
	for i, s := range secrets {
		if i == 0 {
			spec.Volumes = append(spec.Volumes, corev1.Volume{Name: "tls", VolumeSource: corev1.VolumeSource{
				Secret: &corev1.SecretVolumeSource{SecretName: s},
			}})
			continue
		}
		spec.Containers[0].EnvFrom = append(spec.Containers[0].EnvFrom, corev1.EnvFromSource{
			SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: s}},
		})
	}
	f.create(&appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/instance": name}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{
				"stateguard.io/repository": "acme/shop-db", "org.opencontainers.image.source": "https://github.com/acme/shop-db",
				"org.opencontainers.image.revision": "rev-" + version, "example.com/unrelated": "not carried",
			}}, Spec: spec},
		},
	})
	f.waitPods(name, 1)
}

// waitPods waits until Deployment name has n running pods and no other.
func (f *fixture) waitPods(name string, n int) {
	f.t.Helper()
	err := wait.PollUntilContextTimeout(f.t.Context(), 100*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		var pods corev1.PodList
		if err := f.kc.List(ctx, &pods, client.InNamespace(f.ns), client.MatchingLabels{"app.kubernetes.io/instance": name}); err != nil {
			return false, nil //nolint:nilerr // retried until the timeout
		}
		for _, p := range pods.Items {
			if p.Status.Phase != corev1.PodRunning || len(p.Status.ContainerStatuses) == 0 || p.Status.ContainerStatuses[0].ImageID == "" {
				return false, nil
			}
		}
		return len(pods.Items) == n, nil
	})
	if err != nil {
		f.t.Fatalf("waiting for %d running pods of %s: %v", n, name, err)
	}
}

// deletePod scales Deployment name to zero: its pod stops and goes.
func (f *fixture) deletePod(name string) {
	f.t.Helper()
	patch := client.RawPatch(types.MergePatchType, []byte(`{"spec":{"replicas":0}}`))
	if err := f.kc.Patch(f.t.Context(), &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name}}, patch); err != nil {
		f.t.Fatalf("scale %s to 0: %v", name, err)
	}
	f.waitPods(name, 0)
}

// image is the image of version; digest is what KWOK's node reports for it.
func image(version string) string { return "registry.example/db:" + version }

func digest(version string) string {
	sum := sha256.Sum256([]byte(image(version)))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// published reads every workload.observed event stored in the SNAPSHOT
// stream, in order.
func (f *fixture) published() []events.Event {
	f.t.Helper()
	ctx := f.t.Context()
	s, err := f.ev.JetStream().Stream(ctx, events.StreamSnapshot)
	if err != nil {
		f.t.Fatal(err)
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{events.SubjectOf(events.TypeWorkloadObserved)}})
	if err != nil {
		f.t.Fatal(err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	var out []events.Event
	for n := int(info.NumPending); len(out) < n; {
		batch, err := cons.Fetch(n-len(out), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			f.t.Fatal(err)
		}
		for m := range batch.Messages() {
			ev, err := events.DecodeMsg(&nats.Msg{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()})
			if err != nil {
				f.t.Fatal(err)
			}
			out = append(out, ev)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			f.t.Fatal(err)
		}
	}
	return out
}

type seen struct {
	id  string
	obs events.WorkloadObserved
}

func (f *fixture) observations(pvc string) []seen {
	f.t.Helper()
	var out []seen
	for _, ev := range f.published() {
		o, err := events.Decode[events.WorkloadObserved](ev)
		if err != nil {
			f.t.Fatal(err)
		}
		if o.PVC == pvc && o.Namespace == f.ns {
			out = append(out, seen{ev.ID(), o})
		}
	}
	return out
}

// waitFor waits until the newest observation of pvc satisfies ok and
// returns every observation of pvc.
func (f *fixture) waitFor(pvc, what string, ok func(events.WorkloadObserved) bool) []seen {
	f.t.Helper()
	var all []seen
	err := wait.PollUntilContextTimeout(f.t.Context(), 50*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		all = f.observations(pvc)
		return len(all) > 0 && ok(all[len(all)-1].obs), nil
	})
	if err != nil {
		f.t.Fatalf("no observation of %s with %s; published: %+v", pvc, what, all)
	}
	return all
}

func digests(o events.WorkloadObserved) []string {
	var out []string
	for _, p := range o.Pods {
		for _, c := range p.Containers {
			out = append(out, c.Digest)
		}
	}
	slices.Sort(out)
	return out
}

func has(o events.WorkloadObserved, digest string) bool { return slices.Contains(digests(o), digest) }

var (
	digestV1 = digest("1.0.0")
	digestV2 = digest("2.0.0")
	digestV3 = digest("3.0.0")
)

// TestObserverFollowsTheVersionsOnAProtectedPVC walks one PVC through a
// rollout, a restart of the observer and an unselected neighbour.
func TestObserverFollowsTheVersionsOnAProtectedPVC(t *testing.T) {
	f := newFixture(t)
	f.create(policy("daily", map[string]string{"stateguard.io/protect": "yes"}),
		pvc("db-data", map[string]string{"stateguard.io/protect": "yes"}), pvc("scratch", nil),
		tlsSecret("db-tls"), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db-password"}, StringData: map[string]string{"p": "x"}})
	m, stop := f.start()

	// First sight of the protected PVC: nothing mounts it.
	f.waitFor("db-data", "no pods", func(o events.WorkloadObserved) bool { return len(o.Pods) == 0 })

	t.Run("a pod with a new digest yields one observation with the digest and its TLS Secret", func(t *testing.T) {
		f.runPod("db-1", "db-data", "1.0.0", "db-tls", "db-password")
		all := f.waitFor("db-data", digestV1, func(o events.WorkloadObserved) bool { return has(o, digestV1) })
		if n := len(slices.DeleteFunc(slices.Clone(all), func(s seen) bool { return !has(s.obs, digestV1) })); n != 1 {
			t.Errorf("%d observations with %s, want 1: %+v", n, digestV1, all)
		}
		got := all[len(all)-1].obs.Pods
		if len(got) != 1 {
			t.Fatalf("pods %+v, want db-1", got)
		}
		p := got[0]
		if !strings.HasPrefix(p.Pod, "db-1-") || p.App != "db" || p.Version != "1.0.0" || p.StartedAt == nil {
			t.Errorf("pod %+v", p)
		}
		if !slices.Equal(p.Secrets, []string{"db-tls"}) {
			t.Errorf("secrets %v, want [db-tls] (db-password is not a TLS Secret)", p.Secrets)
		}
		if !slices.Equal(p.Labels, []string{"app.kubernetes.io/instance=db-1", "app.kubernetes.io/part-of=shop"}) {
			t.Errorf("labels %v", p.Labels)
		}
		want := map[string]string{"stateguard.io/repository": "acme/shop-db", "org.opencontainers.image.source": "https://github.com/acme/shop-db",
			"org.opencontainers.image.revision": "rev-1.0.0"}
		if diff := cmp.Diff(want, p.Annotations); diff != "" {
			t.Errorf("join annotations (-want +got)\n%s", diff)
		}
		if id := events.ObservationID(all[len(all)-1].obs); all[len(all)-1].id != id {
			t.Errorf("event id %s, want the content id %s", all[len(all)-1].id, id)
		}
	})

	t.Run("the last pod of a version stopping yields an observation without it", func(t *testing.T) {
		f.runPod("db-2", "db-data", "2.0.0")
		f.waitFor("db-data", "both versions", func(o events.WorkloadObserved) bool { return has(o, digestV1) && has(o, digestV2) })
		f.deletePod("db-1")
		all := f.waitFor("db-data", "v2 alone", func(o events.WorkloadObserved) bool {
			return slices.Equal(digests(o), []string{digestV2})
		})
		last := all[len(all)-1].obs
		if last.Resync {
			t.Error("a change is flagged as a resync")
		}
	})
	stop()
	before := f.observations("db-data")

	t.Run("a restarted observer republishes the unchanged set with the same id", func(t *testing.T) {
		m2, stop2 := f.start()
		err := wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
			return testutil.ToFloat64(m2.Observations.WithLabelValues("resync")) >= 1, nil
		})
		if err != nil {
			t.Fatal("the start-up resync published nothing")
		}
		stop2()
		if got := testutil.ToFloat64(m2.Observations.WithLabelValues("change")); got != 0 {
			t.Errorf("%v changes published for an unchanged set", got)
		}
		after := f.observations("db-data")
		if len(after) != len(before) {
			t.Errorf("the resync added %d events; JetStream should have deduplicated them by id", len(after)-len(before))
		}
	})

	t.Run("a restarted observer publishes only what changed while it was down", func(t *testing.T) {
		f.runPod("db-3", "db-data", "3.0.0")
		f.deletePod("db-2")
		restart := time.Now().UTC().Truncate(time.Second)
		m3, stop3 := f.start()
		all := f.waitFor("db-data", "v3 alone", func(o events.WorkloadObserved) bool {
			return slices.Equal(digests(o), []string{digestV3})
		})
		stop3()
		if n := len(all) - len(before); n != 1 {
			t.Errorf("%d new observations after the restart, want 1 (the change): %+v", n, all[len(before):])
		}
		if at := all[len(all)-1].obs.ObservedAt; at.Before(restart) {
			t.Errorf("observed at %s, before the restart at %s", at, restart)
		}
		if got := testutil.ToFloat64(m3.Observations.WithLabelValues("change")); got != 1 {
			t.Errorf("%v changes, want 1", got)
		}
	})

	if n := testutil.ToFloat64(m.ObservationErrors); n != 0 {
		t.Errorf("%v observation errors", n)
	}
	t.Run("an unselected PVC yields nothing", func(t *testing.T) {
		f.runPod("tmp-1", "scratch", "1.0.0")
		// A change on the protected PVC after it, from the same queue,
		// shows the scratch pod was handled before.
		_, stop4 := f.start()
		f.deletePod("db-3")
		f.waitFor("db-data", "no pods", func(o events.WorkloadObserved) bool { return len(o.Pods) == 0 })
		stop4()
		if got := f.observations("scratch"); len(got) != 0 {
			t.Errorf("observations of an unselected PVC: %+v", got)
		}
	})
}
