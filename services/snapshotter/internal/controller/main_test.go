package controller_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	"github.com/nats-io/nats.go"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/harness/kubetest"
	"github.com/stateguard/stateguard/pkg/harness/natstest"
	"github.com/stateguard/stateguard/pkg/harness/snapsim"
	"github.com/stateguard/stateguard/services/snapshotter/api/v1alpha1"
	"github.com/stateguard/stateguard/services/snapshotter/internal/controller"
	"github.com/stateguard/stateguard/services/snapshotter/internal/hooks"
)

// Labels the tests put on snapshots (through a policy's labels) to steer
// the simulated CSI snapshot controller.
const (
	labelHold = "stateguard.test/hold"
	labelFail = "stateguard.test/fail"
)

var (
	env    *kubetest.Env
	kc     client.WithWatch
	nsSeq  atomic.Int64
	logger = slog.New(slog.DiscardHandler)
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	env, err = kubetest.StartEnv(kubetest.Options{WithoutCertManager: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	scheme, err := controller.Scheme()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	kc, err = client.NewWithWatch(env.Config, client.Options{Scheme: scheme})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- snapsim.Run(ctx, env.Config, snapsim.Options{
			Hold: func(s *snapv1.VolumeSnapshot) bool { return s.Labels[labelHold] != "" },
			Fail: func(s *snapv1.VolumeSnapshot) string {
				if s.Labels[labelFail] != "" {
					return "simulated CSI failure"
				}
				return ""
			},
		})
	}()
	code := m.Run()
	cancel()
	<-done
	return code
}

// namespace creates a fresh namespace for a test.
func namespace(t *testing.T) string {
	t.Helper()
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

// policyOpt changes a policy under construction.
type policyOpt func(*v1alpha1.SnapshotPolicy)

func withHooks(pre ...v1alpha1.Hook) policyOpt {
	return func(p *v1alpha1.SnapshotPolicy) { p.Spec.Hooks.Pre = pre }
}

func withLabels(kv ...string) policyOpt {
	return func(p *v1alpha1.SnapshotPolicy) {
		p.Spec.Labels = map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			p.Spec.Labels[kv[i]] = kv[i+1]
		}
	}
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

// appPod creates a Deployment, its ReplicaSet and a pod mounting claim, with
// a kubelet-like container status carrying the image ID.
func appPod(t *testing.T, ns, claim string) *corev1.Pod {
	t.Helper()
	yes := true
	labels := map[string]string{"app.kubernetes.io/name": "db", "app.kubernetes.io/version": "1.4.2"}
	tmpl := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "db", Image: "ghcr.io/acme/db:1.4.2"}}},
	}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"},
		Spec:       appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: tmpl},
	}
	create(t, dep)
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db-5d8f", OwnerReferences: []metav1.OwnerReference{{
			APIVersion: "apps/v1", Kind: "Deployment", Name: dep.Name, UID: dep.UID, Controller: &yes,
		}}},
		Spec: appsv1.ReplicaSetSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: tmpl},
	}
	create(t, rs)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db-5d8f-x2x", Labels: labels, OwnerReferences: []metav1.OwnerReference{{
			APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name, UID: rs.UID, Controller: &yes,
		}}},
		Spec: corev1.PodSpec{
			Containers: tmpl.Spec.Containers,
			Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim},
			}}},
		},
	}
	create(t, pod)
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{
		Name: "db", Image: "ghcr.io/acme/db:1.4.2", ImageID: "ghcr.io/acme/db@sha256:feedface", Ready: true,
	}}}
	if err := kc.Status().Update(t.Context(), pod); err != nil {
		t.Fatal(err)
	}
	return pod
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
func (r *rig) controller(pub controller.Publisher) *controller.Controller {
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

// pollUntil waits for cond (bounded by 30s of real time).
func pollUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		return cond(), nil
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// until makes passes until cond holds (bounded by 30s of real time).
func (r *rig) until(what string, cond func() bool) {
	r.t.Helper()
	err := wait.PollUntilContextTimeout(r.t.Context(), 50*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		r.pass()
		return cond(), nil
	})
	if err != nil {
		r.t.Fatalf("waiting for %s: %v", what, err)
	}
}

func (r *rig) snapshots() []snapv1.VolumeSnapshot {
	r.t.Helper()
	var list snapv1.VolumeSnapshotList
	if err := kc.List(r.t.Context(), &list, client.InNamespace(r.ns)); err != nil {
		r.t.Fatal(err)
	}
	return list.Items
}

// nextHour is the first full hour after t, plus a minute.
func nextHour(t time.Time, hours int) time.Time {
	return t.Truncate(time.Hour).Add(time.Duration(hours)*time.Hour + time.Minute)
}
