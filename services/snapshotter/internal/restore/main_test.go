package restore_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	"github.com/nats-io/nats.go"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/harness/csidriver"
	"github.com/stateguard/stateguard/pkg/harness/kubetest"
	"github.com/stateguard/stateguard/pkg/harness/natstest"
	"github.com/stateguard/stateguard/services/snapshotter/api/v1alpha1"
	"github.com/stateguard/stateguard/services/snapshotter/internal/controller"
	"github.com/stateguard/stateguard/services/snapshotter/internal/restore"
)

// One cluster (control plane, kube-controller-manager, scheduler, KWOK,
// snapshot-controller, csi-snapshotter, csi-provisioner on the CSI driver)
// for the package, started by the first test that needs it: its tests run
// one after the other, each in its own namespace (the driver's faults are
// global).
var (
	shared  = &kubetest.Shared{Options: kubetest.Options{WithoutCertManager: true}}
	cluster *kubetest.Cluster // shared's, once a test used it
	kc      client.WithWatch
)

func TestMain(m *testing.M) { shared.Main(m) }

// useCluster starts the package's cluster once and makes a client of it;
// a cluster that cannot start fails the test with the reason (for missing
// binaries: the command that builds them).
func useCluster(t *testing.T) {
	t.Helper()
	cluster = shared.Use(t)
	kube(t)
}

func kube(t *testing.T) client.WithWatch {
	t.Helper()
	if kc != nil {
		return kc
	}
	scheme, err := controller.Scheme()
	if err != nil {
		t.Fatal(err)
	}
	kc, err = client.NewWithWatch(cluster.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	return kc
}

// eventually polls cond until it holds, failing the test after d.
func eventually(t *testing.T, what string, d time.Duration, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, d, true, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

func claim(ns, name string) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": "shop", "stateguard.test/keep": "me"}},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
}

func getClaim(ctx context.Context, ns, name string) (*corev1.PersistentVolumeClaim, error) {
	var pvc corev1.PersistentVolumeClaim
	err := kc.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &pvc)
	return &pvc, err
}

func waitBound(t *testing.T, ns, name string) *corev1.PersistentVolumeClaim {
	t.Helper()
	var pvc *corev1.PersistentVolumeClaim
	eventually(t, "claim "+name+" bound", 90*time.Second, func(ctx context.Context) (bool, error) {
		var err error
		pvc, err = getClaim(ctx, ns, name)
		return err == nil && pvc.Status.Phase == corev1.ClaimBound, nil
	})
	return pvc
}

func snapshot(t *testing.T, ns, name, claim string) {
	t.Helper()
	vs := &snapv1.VolumeSnapshot{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       snapv1.VolumeSnapshotSpec{Source: snapv1.VolumeSnapshotSource{PersistentVolumeClaimName: ptr.To(claim)}},
	}
	if err := kc.Create(t.Context(), vs); err != nil {
		t.Fatal(err)
	}
	eventually(t, "snapshot "+name+" ready", 90*time.Second, func(ctx context.Context) (bool, error) {
		var got snapv1.VolumeSnapshot
		err := kc.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &got)
		return err == nil && got.Status != nil && got.Status.ReadyToUse != nil && *got.Status.ReadyToUse, nil
	})
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// sums are the checksums of the files of the volume bound to claim ns/name.
func sums(t *testing.T, ns, name string) map[string]string {
	t.Helper()
	dir, err := cluster.ClaimDir(t.Context(), ns, name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := csidriver.TreeSums(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// data is a claim's history: the files when snapshot "known-good" was
// taken, and the files after they changed (what a restore replaces).
type data struct {
	snapshot, changed map[string]string
}

// fill writes files into claim ns/name, snapshots them as "known-good" and
// changes them.
func fill(t *testing.T, ns, name string) data {
	t.Helper()
	dir, err := cluster.ClaimDir(t.Context(), ns, name)
	if err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dir, map[string]string{
		"PG_VERSION":      "17\n",
		"base/1/1259":     strings.Repeat("relation pages ", 4096),
		"pg_wal/00000001": "wal segment 1",
	})
	var d data
	d.snapshot = sums(t, ns, name)
	snapshot(t, ns, "known-good", name)
	writeFiles(t, dir, map[string]string{"base/1/1259": "overwritten by a vulnerable version", "pg_wal/00000002": "wal segment 2"})
	if err := os.Remove(filepath.Join(dir, "PG_VERSION")); err != nil {
		t.Fatal(err)
	}
	d.changed = sums(t, ns, name)
	if cmp.Equal(d.snapshot, d.changed) {
		t.Fatal("the change changed nothing")
	}
	return d
}

var labels = map[string]string{"app": "shop"}

func podSpec(claim string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "db", Image: "ghcr.io/acme/db:1.0.0"}},
			Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim},
			}}},
		},
	}
}

// deployment runs 2 replicas mounting claim "data", with the claim filled.
func deployment(t *testing.T, ns string) data {
	t.Helper()
	if err := kc.Create(t.Context(), claim(ns, "data")); err != nil {
		t.Fatal(err)
	}
	waitBound(t, ns, "data")
	d := fill(t, ns, "data")
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: podSpec("data"),
		},
	}
	if err := kc.Create(t.Context(), dep); err != nil {
		t.Fatal(err)
	}
	waitRunning(t, ns, "data", 2)
	return d
}

// waitRunning waits until n running pods mount claim.
func waitRunning(t *testing.T, ns, claim string, n int) {
	t.Helper()
	eventually(t, fmt.Sprintf("%d running pods on claim %s", n, claim), 90*time.Second, func(ctx context.Context) (bool, error) {
		var pods corev1.PodList
		if err := kc.List(ctx, &pods, client.InNamespace(ns)); err != nil {
			return false, nil //nolint:nilerr // retried
		}
		running := 0
		for _, p := range pods.Items {
			for _, v := range p.Spec.Volumes {
				if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == claim && p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
					running++
				}
			}
		}
		return running == n, nil
	})
}

// executor runs an executor on ns until the test ends or stop is called;
// it records Kubernetes Events as the snapshotter does.
func executor(t *testing.T, ns string, ec *events.Client, opts ...func(*restore.Executor)) (stop func()) {
	t.Helper()
	e := newExecutor(t, ns, ec, clock.RealClock{})
	for _, o := range opts {
		o(e)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("executor: %v", err)
		}
	}
	t.Cleanup(stop)
	return stop
}

// newExecutor is an executor of ns with the given clock, recording
// Kubernetes Events through a broadcaster stopped with the test.
func newExecutor(t *testing.T, ns string, ec *events.Client, clk clock.Clock) *restore.Executor {
	t.Helper()
	scheme, err := controller.Scheme()
	if err != nil {
		t.Fatal(err)
	}
	b := record.NewBroadcaster()
	b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: cluster.Client.CoreV1().Events("")})
	t.Cleanup(b.Shutdown)
	return &restore.Executor{
		Client: kube(t), Events: ec, Clock: clk, Namespace: ns,
		Log:  slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("test", t.Name()),
		Poll: 200 * time.Millisecond, Resync: 2 * time.Second,
		Recorder: b.NewRecorder(scheme, corev1.EventSource{Component: "stateguard-snapshotter"}),
	}
}

// kubeEvents waits until the Kubernetes Events recorded on Restore name
// have every reason in want, and returns their reasons and messages.
func kubeEvents(t *testing.T, ns, name string, want ...string) map[string]string {
	t.Helper()
	got := map[string]string{}
	eventually(t, fmt.Sprintf("Events %v on restore %s", want, name), time.Minute, func(ctx context.Context) (bool, error) {
		list, err := cluster.Client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.kind=Restore,involvedObject.name=" + name})
		if err != nil {
			return false, nil //nolint:nilerr // retried
		}
		for _, e := range list.Items {
			got[e.Reason] = e.Type + ": " + e.Message
		}
		for _, w := range want {
			if _, ok := got[w]; !ok {
				return false, nil
			}
		}
		return true, nil
	})
	return got
}

func newRestore(ns, name string, mut ...func(*v1alpha1.Restore)) *v1alpha1.Restore {
	r := &v1alpha1.Restore{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       v1alpha1.RestoreSpec{VolumeSnapshot: "known-good", Incident: "inc-1", Reason: "restore the known-good data"},
	}
	for _, m := range mut {
		m(r)
	}
	return r
}

// ended waits until the Restore ends and returns it.
func ended(t *testing.T, ns, name string) *v1alpha1.Restore {
	t.Helper()
	var r v1alpha1.Restore
	eventually(t, "restore "+name+" to end", 3*time.Minute, func(ctx context.Context) (bool, error) {
		err := kc.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &r)
		return err == nil && r.Status.Phase.Terminal(), nil
	})
	return &r
}

// restoredSums restores snapshot into a new claim and returns its files'
// checksums: what the snapshot holds.
func restoredSums(t *testing.T, ns, snapshot string) map[string]string {
	t.Helper()
	name := "check-" + snapshot
	pvc := claim(ns, name)
	pvc.Spec.DataSource = &corev1.TypedLocalObjectReference{APIGroup: ptr.To(snapv1.GroupName), Kind: "VolumeSnapshot", Name: snapshot}
	if err := kc.Create(t.Context(), pvc); err != nil {
		t.Fatal(err)
	}
	waitBound(t, ns, name)
	return sums(t, ns, name)
}

// decisionEvents returns the restore events of namespace ns, by type.
func decisionEvents(t *testing.T, ec *events.Client, ns string) map[string][]events.Event {
	t.Helper()
	out := map[string][]events.Event{}
	st, err := ec.JetStream().Stream(t.Context(), events.StreamDecision)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for seq := info.State.FirstSeq; seq > 0 && seq <= info.State.LastSeq; seq++ {
		raw, err := st.GetMsg(t.Context(), seq)
		if err != nil {
			continue
		}
		ev, err := events.DecodeMsg(&nats.Msg{Subject: raw.Subject, Header: raw.Header, Data: raw.Data})
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(ev.Subject(), ns+"/") {
			out[ev.Type()] = append(out[ev.Type()], ev)
		}
	}
	return out
}

func natsClient(t *testing.T) *events.Client {
	t.Helper()
	return natstest.Client(t, natstest.Run(t))
}

var discard = slog.New(slog.DiscardHandler)

// onlyCompleted is the one restore.completed among a namespace's decision
// events evs (decisionEvents).
func onlyCompleted(t *testing.T, evs map[string][]events.Event) events.RestoreCompleted {
	t.Helper()
	if len(evs[events.TypeRestoreCompleted]) != 1 {
		t.Fatalf("restore.completed events: %v", evs[events.TypeRestoreCompleted])
	}
	done, err := events.Decode[events.RestoreCompleted](evs[events.TypeRestoreCompleted][0])
	if err != nil {
		t.Fatal(err)
	}
	return done
}

// snapshotCut is when the csi-snapshotter cut volume snapshot ns/name
// (status.creationTime), in UTC.
func snapshotCut(t *testing.T, ns, name string) time.Time {
	t.Helper()
	var vs snapv1.VolumeSnapshot
	if err := kc.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, &vs); err != nil {
		t.Fatal(err)
	}
	if vs.Status == nil || vs.Status.CreationTime == nil {
		t.Fatalf("volume snapshot %s has no status.creationTime: %+v", name, vs.Status)
	}
	return vs.Status.CreationTime.UTC()
}
