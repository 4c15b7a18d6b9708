package controller_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	"github.com/nats-io/nats.go"
	"google.golang.org/grpc/codes"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/harness/csidriver"
	"github.com/stateguard/stateguard/pkg/harness/kubetest"
	"github.com/stateguard/stateguard/pkg/harness/natstest"
	"github.com/stateguard/stateguard/services/snapshotter/api/v1alpha1"
	"github.com/stateguard/stateguard/services/snapshotter/internal/controller"
	"github.com/stateguard/stateguard/services/snapshotter/internal/hooks"
)

var (
	// cluster is the package's one cluster (kubetest.MainCluster): the
	// snapshots are taken by the real snapshot-controller and csi-snapshotter
	// on the test CSI driver, claims bound by csi-provisioner, Deployments
	// and Jobs run by the real controllers on KWOK's node.
	cluster *kubetest.Cluster
	env     *kubetest.Env
	kc      client.WithWatch
	nsSeq   atomic.Int64
	logger  = slog.New(slog.DiscardHandler)
)

func TestMain(m *testing.M) {
	os.Exit(kubetest.MainCluster(m, &cluster, kubetest.Options{WithoutCertManager: true}))
}

// setup makes the package's clients once the cluster runs.
var setup = sync.OnceValue(func() error {
	env = cluster.Env
	scheme, err := controller.Scheme()
	if err != nil {
		return err
	}
	kc, err = client.NewWithWatch(env.Config, client.Options{Scheme: scheme})
	return err
})

// namespace creates a fresh namespace for a test.
func namespace(t *testing.T) string {
	t.Helper()
	if err := setup(); err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("t%d", nsSeq.Add(1))
	if err := kc.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatal(err)
	}
	return name
}

func create(t *testing.T, obj client.Object) {
	t.Helper()
	if err := kc.Create(t.Context(), obj); err != nil {
		t.Fatalf("create %T %s: %v", obj, obj.GetName(), err)
	}
}

func pvc(ns, name string, labels map[string]string) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
}

// failSnapshots makes the CSI driver fail every CreateSnapshot of ns with
// msg, as a storage system would, until the test ends.
func failSnapshots(t *testing.T, ns, msg string) {
	t.Helper()
	t.Cleanup(cluster.Driver.Inject("CreateSnapshot", csidriver.Fault{Code: codes.Internal, Message: msg, Match: csidriver.InNamespace(ns)}))
}

// holdSnapshots makes the CSI driver hold every CreateSnapshot of ns (the
// snapshot stays not ready) until release is called.
func holdSnapshots(t *testing.T, ns string) (release func()) {
	t.Helper()
	hold := make(chan struct{})
	undo := cluster.Driver.Inject("CreateSnapshot", csidriver.Fault{Hold: hold, Match: csidriver.InNamespace(ns)})
	release = sync.OnceFunc(func() {
		undo()
		close(hold)
	})
	t.Cleanup(release)
	return release
}

// policyOpt changes a policy under construction.
type policyOpt func(*v1alpha1.SnapshotPolicy)

func withHooks(pre ...v1alpha1.Hook) policyOpt {
	return func(p *v1alpha1.SnapshotPolicy) { p.Spec.Hooks.Pre = pre }
}

func withRetention(r v1alpha1.Retention) policyOpt {
	return func(p *v1alpha1.SnapshotPolicy) { p.Spec.Retention = r }
}

// policy creates an hourly policy selecting app=db and returns it as stored.
func policy(t *testing.T, ns, name string, opts ...policyOpt) *v1alpha1.SnapshotPolicy {
	t.Helper()
	p := &v1alpha1.SnapshotPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.SnapshotPolicySpec{
			PVCSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
			Schedule:    "0 * * * *",
			TimeZone:    "Europe/Berlin",
		},
	}
	for _, o := range opts {
		o(p)
	}
	create(t, p)
	return p
}

// appImage is the image appPod's Deployment runs.
const appImage = "ghcr.io/acme/db:1.4.2"

// appPod creates a Deployment "db" whose pod mounts claim and waits until
// the cluster's controllers made its ReplicaSet and pod and KWOK's node
// runs it (Running, with the image digest in its container status); it
// returns the pod.
func appPod(t *testing.T, ns, claim string) *corev1.Pod {
	t.Helper()
	labels := map[string]string{"app.kubernetes.io/name": "db", "app.kubernetes.io/version": "1.4.2"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{Name: "db", Image: appImage}},
					Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
						PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim},
					}}},
				},
			},
		},
	}
	create(t, dep)
	var pod *corev1.Pod
	waitFor(t, "a running pod of Deployment db", 90*time.Second, func() bool {
		var pods corev1.PodList
		if err := kc.List(t.Context(), &pods, client.InNamespace(ns), client.MatchingLabels(labels)); err != nil || len(pods.Items) != 1 {
			return false
		}
		p := &pods.Items[0]
		if p.Status.Phase != corev1.PodRunning || len(p.Status.ContainerStatuses) != 1 || p.Status.ContainerStatuses[0].ImageID == "" {
			return false
		}
		pod = p
		return true
	})
	return pod
}

// waitFor polls cond until it holds, failing the test after d of real time.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, d, true, func(context.Context) (bool, error) {
		return cond(), nil
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// rig is a controller wired to a fresh JetStream and the shared API server.
type rig struct {
	t      *testing.T
	ns     string
	events *events.Client
	clock  *clocktesting.FakeClock
	ctrl   *controller.Controller
}

func newRig(t *testing.T, ns string, start time.Time) *rig {
	t.Helper()
	srv := natstest.Run(t)
	r := &rig{t: t, ns: ns, events: natstest.Client(t, srv), clock: clocktesting.NewFakeClock(start)}
	r.ctrl = r.controller(r.events)
	return r
}

// controller returns a new controller instance (as after a restart).
func (r *rig) controller(pub events.Publisher) *controller.Controller {
	ex, err := hooks.NewExec(env.Config)
	if err != nil {
		r.t.Fatal(err)
	}
	return &controller.Controller{Client: kc, Events: pub, Hooks: ex, Clock: r.clock, Log: logger, Namespace: r.ns}
}

// pass runs one reconcile pass and fails the test on error.
func (r *rig) pass() {
	r.t.Helper()
	if _, err := r.ctrl.Reconcile(r.t.Context()); err != nil {
		r.t.Fatalf("reconcile: %v", err)
	}
}

// published returns every event in the SNAPSHOT stream of the given type.
func (r *rig) published(typ string) []events.Event {
	r.t.Helper()
	ctx := r.t.Context()
	st, err := r.events.JetStream().Stream(ctx, events.StreamSnapshot)
	if err != nil {
		r.t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		r.t.Fatal(err)
	}
	var out []events.Event
	for seq := info.State.FirstSeq; seq > 0 && seq <= info.State.LastSeq; seq++ {
		raw, err := st.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		ev, err := events.DecodeMsg(&nats.Msg{Subject: raw.Subject, Header: raw.Header, Data: raw.Data})
		if err != nil {
			r.t.Fatal(err)
		}
		if ev.Type() == typ {
			out = append(out, ev)
		}
	}
	return out
}

// pollUntil waits for cond (bounded by 60s of real time).
func pollUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitFor(t, what, 60*time.Second, cond)
}

// until makes passes until cond holds (bounded by 90s of real time: the
// snapshot controllers work in their own time).
func (r *rig) until(what string, cond func() bool) {
	r.t.Helper()
	err := wait.PollUntilContextTimeout(r.t.Context(), 100*time.Millisecond, 90*time.Second, true, func(context.Context) (bool, error) {
		r.pass()
		return cond(), nil
	})
	if err != nil {
		r.t.Fatalf("waiting for %s: %v", what, err)
	}
}

// snapshots lists the namespace's snapshots that are not being deleted
// (the snapshot controllers' finalizers keep a deleted one a moment).
func (r *rig) snapshots() []snapv1.VolumeSnapshot {
	r.t.Helper()
	var list snapv1.VolumeSnapshotList
	if err := kc.List(r.t.Context(), &list, client.InNamespace(r.ns)); err != nil {
		r.t.Fatal(err)
	}
	return slices.DeleteFunc(list.Items, func(vs snapv1.VolumeSnapshot) bool { return vs.DeletionTimestamp != nil })
}

// nextHour is the first full hour after t, plus a minute.
func nextHour(t time.Time, hours int) time.Time {
	return t.Truncate(time.Hour).Add(time.Duration(hours)*time.Hour + time.Minute)
}
