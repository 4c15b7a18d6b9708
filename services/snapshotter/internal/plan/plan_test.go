package plan

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"
	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/restoreplan"
	"github.com/stateguard/stateguard/services/snapshotter/api/v1alpha1"
)

// What For reads from the cluster is pure logic over a few objects: a fake
// client stands in for the API server here (the restore-plan subcommand and
// route run against a real one in the snapshotter's main_test.go).

func scheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, snapv1.AddToScheme} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

type snapOpt func(*snapv1.VolumeSnapshot)

func snapshot(opts ...snapOpt) *snapv1.VolumeSnapshot {
	vs := &snapv1.VolumeSnapshot{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "db-1"},
		Spec:       snapv1.VolumeSnapshotSpec{Source: snapv1.VolumeSnapshotSource{PersistentVolumeClaimName: ptr.To("data")}},
	}
	for _, o := range opts {
		o(vs)
	}
	return vs
}

func restoreSize(q string) snapOpt {
	return func(vs *snapv1.VolumeSnapshot) {
		vs.Status = &snapv1.VolumeSnapshotStatus{RestoreSize: ptr.To(resource.MustParse(q))}
	}
}

func workloads(t *testing.T, wls ...events.VolumeWorkload) snapOpt {
	raw, err := json.Marshal(wls)
	if err != nil {
		t.Fatal(err)
	}
	return annotation(string(raw))
}

func annotation(raw string) snapOpt {
	return func(vs *snapv1.VolumeSnapshot) {
		vs.Annotations = map[string]string{v1alpha1.AnnotationWorkloads: raw}
	}
}

func claim() *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "data", Labels: map[string]string{"app": "db"}},
		Spec: corev1.PersistentVolumeClaimSpec{
			StorageClassName: ptr.To("fast"),
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce, corev1.ReadOnlyMany},
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("8Gi")}},
		},
	}
}

// pod mounts the claim "data"; owner, when set, is its ReplicaSet.
func pod(name, owner string, phase corev1.PodPhase) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "db", Image: "postgres:17"}},
			Volumes:    []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}}},
		},
		Status: corev1.PodStatus{Phase: phase},
	}
	if owner != "" {
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: owner, UID: "rs", Controller: ptr.To(true)}}
	}
	return p
}

func replicaSetOf(name, deployment string) *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, UID: "rs",
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: deployment, UID: "dep", Controller: ptr.To(true)}}}}
}

// TestFor: which facts of the snapshot, its claim and the pods go into the
// plan. Each case names the restoreplan.Snapshot For must derive; the plan
// itself is restoreplan's (tested there).
func TestFor(t *testing.T) {
	deployment := events.ObjectRef{Kind: "Deployment", Namespace: "shop", Name: "db"}
	statefulSet := events.ObjectRef{Kind: "StatefulSet", Namespace: "shop", Name: "pg"}
	full := restoreplan.Snapshot{Namespace: "shop", VolumeSnapshot: "db-1", PVC: "data", RestoreSize: "10Gi",
		StorageClassName: "fast", AccessModes: []string{"ReadWriteOnce", "ReadOnlyMany"}, Labels: map[string]string{"app": "db"}}
	with := func(s restoreplan.Snapshot, edit func(*restoreplan.Snapshot)) restoreplan.Snapshot {
		edit(&s)
		return s
	}
	for _, tt := range []struct {
		name    string
		objects []client.Object
		want    restoreplan.Snapshot
	}{{
		name:    "snapshot and claim: size from the snapshot, class, modes and labels from the claim",
		objects: []client.Object{snapshot(restoreSize("10Gi")), claim()},
		want:    full,
	}, {
		name:    "no restore size yet: the claim's request",
		objects: []client.Object{snapshot(), claim()},
		want:    with(full, func(s *restoreplan.Snapshot) { s.RestoreSize = "8Gi" }),
	}, {
		name:    "claim gone: only what the snapshot says",
		objects: []client.Object{snapshot(restoreSize("10Gi"))},
		want:    restoreplan.Snapshot{Namespace: "shop", VolumeSnapshot: "db-1", PVC: "data", RestoreSize: "10Gi"},
	}, {
		name: "pre-provisioned snapshot: the claim from stateguard's label",
		objects: []client.Object{snapshot(restoreSize("10Gi"), func(vs *snapv1.VolumeSnapshot) {
			vs.Spec.Source = snapv1.VolumeSnapshotSource{VolumeSnapshotContentName: ptr.To("content-1")}
			vs.Labels = map[string]string{v1alpha1.LabelPVC: "data"}
		}), claim()},
		want: full,
	}, {
		name: "workloads recorded at snapshot time win over the pods now, each owner once",
		objects: []client.Object{snapshot(restoreSize("10Gi"), workloads(t,
			events.VolumeWorkload{Pod: "pg-0", Owner: &statefulSet},
			events.VolumeWorkload{Pod: "pg-1", Owner: &statefulSet},
			events.VolumeWorkload{Pod: "bare"},
		)), claim(), pod("db-7c9-x", "db-7c9", corev1.PodRunning), replicaSetOf("db-7c9", "db")},
		want: with(full, func(s *restoreplan.Snapshot) {
			s.Workloads = []events.ObjectRef{statefulSet, {Kind: "Pod", Namespace: "shop", Name: "bare"}}
		}),
	}, {
		name:    "nothing recorded: the running pods that mount the claim, ReplicaSets resolved to their Deployment",
		objects: []client.Object{snapshot(restoreSize("10Gi")), claim(), pod("db-7c9-x", "db-7c9", corev1.PodRunning), pod("db-7c9-y", "db-7c9", corev1.PodRunning), pod("done", "", corev1.PodSucceeded), replicaSetOf("db-7c9", "db")},
		want:    with(full, func(s *restoreplan.Snapshot) { s.Workloads = []events.ObjectRef{deployment} }),
	}, {
		name:    "an unreadable record falls back to the pods",
		objects: []client.Object{snapshot(restoreSize("10Gi"), annotation("{not json")), claim(), pod("db-7c9-x", "db-7c9", corev1.PodRunning), replicaSetOf("db-7c9", "db")},
		want:    with(full, func(s *restoreplan.Snapshot) { s.Workloads = []events.ObjectRef{deployment} }),
	}} {
		t.Run(tt.name, func(t *testing.T) {
			c := fake.NewClientBuilder().WithScheme(scheme(t)).WithObjects(tt.objects...).Build()
			got, err := For(t.Context(), c, "shop", "db-1")
			if err != nil {
				t.Fatal(err)
			}
			want, err := restoreplan.For(tt.want)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
}

// TestForErrors: a missing snapshot is ErrNotFound; other read failures are
// errors but not ErrNotFound; a missing claim is not an error (above).
func TestForErrors(t *testing.T) {
	c := fake.NewClientBuilder().WithScheme(scheme(t)).Build()
	if _, err := For(t.Context(), c, "shop", "db-1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing snapshot: err = %v, want ErrNotFound", err)
	}
	denied := errors.New("forbidden")
	for _, kind := range []string{"VolumeSnapshot", "PersistentVolumeClaim"} {
		c := fake.NewClientBuilder().WithScheme(scheme(t)).WithObjects(snapshot(), claim()).WithInterceptorFuncs(interceptor.Funcs{
			Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
				gvks, _, _ := c.Scheme().ObjectKinds(obj)
				if len(gvks) > 0 && gvks[0].Kind == kind {
					return denied
				}
				return c.Get(ctx, key, obj, opts...)
			},
		}).Build()
		if _, err := For(t.Context(), c, "shop", "db-1"); !errors.Is(err, denied) || errors.Is(err, ErrNotFound) {
			t.Errorf("reading the %s fails: err = %v, want it passed on", kind, err)
		}
	}
}

// TestHandler: 200 with the plan as JSON, 404 for a missing snapshot, 500
// (the cause only in the log) when the cluster cannot be read.
func TestHandler(t *testing.T) {
	ok := fake.NewClientBuilder().WithScheme(scheme(t)).WithObjects(snapshot(restoreSize("10Gi")), claim()).Build()
	broken := fake.NewClientBuilder().WithScheme(scheme(t)).WithInterceptorFuncs(interceptor.Funcs{
		Get: func(context.Context, client.WithWatch, client.ObjectKey, client.Object, ...client.GetOption) error {
			return errors.New("etcd unavailable")
		},
	}).Build()
	serve := func(c client.Reader, path string) *httptest.ResponseRecorder {
		mux := http.NewServeMux()
		mux.Handle(Route, Handler(c, slog.New(slog.DiscardHandler)))
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec
	}

	rec := serve(ok, "/v1/restore-plan/shop/db-1")
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("plan: %d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
	var got restoreplan.Plan
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want, _ := For(t.Context(), ok, "shop", "db-1")
	if diff := cmp.Diff(want, got); diff != "" || got.NewPVC != "data" {
		t.Errorf("plan (-want +got):\n%s", diff)
	}
	if rec := serve(ok, "/v1/restore-plan/shop/missing"); rec.Code != http.StatusNotFound {
		t.Errorf("missing snapshot: %d, want 404", rec.Code)
	}
	rec = serve(broken, "/v1/restore-plan/shop/db-1")
	if rec.Code != http.StatusInternalServerError || rec.Body.String() != "restore plan failed\n" {
		t.Errorf("cluster unreadable: %d %q, want 500 without the cause", rec.Code, rec.Body.String())
	}
}
