package restore

import (
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/snapshotter/api/v1alpha1"
	"github.com/stateguard/stateguard/services/snapshotter/internal/controller/reporting"
)

var t0 = time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)

func restoreOf(name string, age time.Duration, claim string, phase v1alpha1.RestorePhase) v1alpha1.Restore {
	return v1alpha1.Restore{
		ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID(name), CreationTimestamp: metav1.NewTime(t0.Add(-age))},
		Status:     v1alpha1.RestoreStatus{PVC: claim, Phase: phase},
	}
}

func TestHolder(t *testing.T) {
	for _, tt := range []struct {
		name     string
		restores []v1alpha1.Restore
		want     string
	}{
		{"no restore: nobody holds the claim", nil, ""},
		{"a restore of another claim does not hold it", []v1alpha1.Restore{restoreOf("a", time.Hour, "other", v1alpha1.RestoreRestoring)}, ""},
		{"ended restores do not hold it", []v1alpha1.Restore{
			restoreOf("a", time.Hour, "data", v1alpha1.RestoreCompleted), restoreOf("b", time.Hour, "data", v1alpha1.RestoreRolledBack),
			restoreOf("c", time.Hour, "data", v1alpha1.RestoreFailed),
		}, ""},
		{"a started restore holds it over an older pending one", []v1alpha1.Restore{
			restoreOf("old", time.Hour, "data", v1alpha1.RestorePending), restoreOf("new", time.Minute, "data", v1alpha1.RestoreScalingDown),
		}, "new"},
		{"among pending ones the oldest", []v1alpha1.Restore{
			restoreOf("b", time.Minute, "data", v1alpha1.RestorePending), restoreOf("a", time.Hour, "data", v1alpha1.RestorePending),
		}, "a"},
		{"same age: the first by name", []v1alpha1.Restore{
			restoreOf("b", time.Minute, "data", v1alpha1.RestorePending), restoreOf("a", time.Minute, "data", v1alpha1.RestorePending),
		}, "a"},
		{"a rolling back restore still holds it", []v1alpha1.Restore{
			restoreOf("a", time.Minute, "data", v1alpha1.RestoreRollingBack), restoreOf("b", time.Hour, "data", v1alpha1.RestorePending),
		}, "a"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := ""
			if h := Holder(tt.restores, "data"); h != nil {
				got = h.Name
			}
			if got != tt.want {
				t.Errorf("Holder = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestChanged(t *testing.T) {
	for phase, want := range map[v1alpha1.RestorePhase]bool{
		"": false, v1alpha1.RestorePending: false, v1alpha1.RestoreSafetySnapshot: false,
		v1alpha1.RestoreScalingDown: true, v1alpha1.RestoreRestoring: true, v1alpha1.RestoreScalingUp: true, v1alpha1.RestoreVerifying: true,
	} {
		if got := Changed(phase); got != want {
			t.Errorf("Changed(%q) = %v, want %v", phase, got, want)
		}
	}
}

func TestOverdue(t *testing.T) {
	for _, tt := range []struct {
		name     string
		deadline v1alpha1.Duration
		elapsed  time.Duration
		want     bool
		wantErr  bool
	}{
		{"within the default deadline", "", 29 * time.Minute, false, false},
		{"past the default deadline", "", 31 * time.Minute, true, false},
		{"past a given deadline", "90s", 2 * time.Minute, true, false},
		{"a deadline that does not parse", "3d", time.Minute, false, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Overdue(t0, tt.deadline, t0.Add(tt.elapsed))
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("Overdue = %v, %v; want %v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestClaimFromTemplateKeepsTheClaimsShape(t *testing.T) {
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data", UID: "u1", Labels: map[string]string{"app": "db"}, Annotations: map[string]string{
			"team": "storage", "pv.kubernetes.io/bind-completed": "yes", "volume.kubernetes.io/storage-provisioner": "csi",
		}},
		Spec: corev1.PersistentVolumeClaimSpec{
			StorageClassName: ptr.To("fast"), AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOncePod},
			VolumeMode: ptr.To(corev1.PersistentVolumeFilesystem), VolumeName: "pv-old",
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
	bigger := resource.MustParse("2Gi")
	tmpl := TemplateOf(pvc, &bigger)
	got, err := ClaimFrom(tmpl, "shop", "data", "r1", "known-good", "")
	if err != nil {
		t.Fatal(err)
	}
	want := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "data", Labels: map[string]string{"app": "db", v1alpha1.LabelRestore: "r1"},
			Annotations: map[string]string{"team": "storage", v1alpha1.AnnotationRestoredFrom: "known-good"}},
		Spec: corev1.PersistentVolumeClaimSpec{
			StorageClassName: ptr.To("fast"), AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOncePod},
			VolumeMode: ptr.To(corev1.PersistentVolumeFilesystem),
			Resources:  corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("2Gi")}},
			DataSource: &corev1.TypedLocalObjectReference{APIGroup: ptr.To("snapshot.storage.k8s.io"), Kind: "VolumeSnapshot", Name: "known-good"},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("restored claim (-want +got):\n%s", diff)
	}
	back, err := ClaimFrom(tmpl, "shop", "data", "r1", "", "pv-old")
	if err != nil {
		t.Fatal(err)
	}
	if back.Spec.DataSource != nil || back.Spec.VolumeName != "pv-old" || back.Annotations[v1alpha1.AnnotationRestoredFrom] != "" {
		t.Errorf("rollback claim %+v, want bound to pv-old without a data source", back.Spec)
	}
	if tmpl.UID != "u1" {
		t.Errorf("template uid %q", tmpl.UID)
	}
}

func TestForRequest(t *testing.T) {
	ok := events.RestoreRequested{RequestID: "rr-1", Namespace: "shop", PVC: "data", Snapshot: "known-good", IncidentID: "inc", Actor: "alice", Reason: "why"}
	r, err := ForRequest(ok)
	if err != nil {
		t.Fatal(err)
	}
	if r.Name != events.RestoreName("rr-1") || r.Namespace != "shop" || r.Spec.VolumeSnapshot != "known-good" || r.Spec.RequestID != "rr-1" {
		t.Errorf("Restore %+v", r)
	}
	// Only the incident: the Restore follows its current recommendation.
	r, err = ForRequest(events.RestoreRequested{RequestID: "rr-2", Namespace: "shop", IncidentID: "inc"})
	if err != nil || r.Spec.VolumeSnapshot != "" || r.Spec.Incident != "inc" {
		t.Errorf("incident-only request: %+v, %v", r, err)
	}
	for name, req := range map[string]events.RestoreRequested{
		"no request id":               {Namespace: "shop", Snapshot: "s"},
		"no namespace":                {RequestID: "x", Snapshot: "s"},
		"no snapshot and no incident": {RequestID: "x", Namespace: "shop"},
		"a bad pvc name":              {RequestID: "x", Namespace: "shop", Snapshot: "s", PVC: "Bad_Name"},
	} {
		if _, err := ForRequest(req); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestChildNamesFitALabel(t *testing.T) {
	long := "restore-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	for _, n := range []string{SafetySnapshotName(long), VerificationJobName(long), SafetySnapshotName("r1")} {
		if len(n) > 63 {
			t.Errorf("%s: %d characters", n, len(n))
		}
	}
	if SafetySnapshotName("r1") != "r1-safety" {
		t.Errorf("SafetySnapshotName(r1) = %s", SafetySnapshotName("r1"))
	}
}

func safetyObject(labels, annotations map[string]string) *snapv1.VolumeSnapshot {
	return &snapv1.VolumeSnapshot{ObjectMeta: metav1.ObjectMeta{Name: "r1-safety", Labels: labels, Annotations: annotations}}
}

// restore.completed's snapshot_time is the restored snapshot's
// snapshot.completed creation_time, so a consumer finds the same point of
// the lineage; snapshot_pvc is set only for a snapshot of another claim.
func TestRestoredFromAgreesWithSnapshotCompleted(t *testing.T) {
	cut := metav1.NewTime(t0.Add(-time.Hour).In(time.FixedZone("east", 3600)))
	claim := func(name string) snapv1.VolumeSnapshotSource {
		return snapv1.VolumeSnapshotSource{PersistentVolumeClaimName: ptr.To(name)}
	}
	cases := []struct {
		name    string
		vs      snapv1.VolumeSnapshot
		wantPVC string
		wantAt  time.Time
	}{
		{"status.creationTime", snapv1.VolumeSnapshot{
			ObjectMeta: metav1.ObjectMeta{Name: "s1", CreationTimestamp: metav1.NewTime(t0)},
			Spec:       snapv1.VolumeSnapshotSpec{Source: claim("data")},
			Status:     &snapv1.VolumeSnapshotStatus{CreationTime: &cut, ReadyToUse: ptr.To(true)},
		}, "", t0.Add(-time.Hour)},
		{"no status.creationTime: the object's creation", snapv1.VolumeSnapshot{
			ObjectMeta: metav1.ObjectMeta{Name: "s2", CreationTimestamp: metav1.NewTime(t0)},
			Spec:       snapv1.VolumeSnapshotSpec{Source: claim("data")},
			Status:     &snapv1.VolumeSnapshotStatus{ReadyToUse: ptr.To(true)},
		}, "", t0},
		{"a snapshot of another claim", snapv1.VolumeSnapshot{
			ObjectMeta: metav1.ObjectMeta{Name: "s3", CreationTimestamp: metav1.NewTime(t0)},
			Spec:       snapv1.VolumeSnapshotSpec{Source: claim("old-data")},
			Status:     &snapv1.VolumeSnapshotStatus{CreationTime: &cut, ReadyToUse: ptr.To(true)},
		}, "old-data", t0.Add(-time.Hour)},
	}
	for _, c := range cases {
		pvc, at := RestoredFrom(&c.vs, "data")
		if pvc != c.wantPVC || !at.Equal(c.wantAt) || at.Location() != time.UTC {
			t.Errorf("%s: RestoredFrom = %q, %s; want %q, %s (UTC)", c.name, pvc, at, c.wantPVC, c.wantAt)
		}
		if completed := reporting.Completed(&c.vs, slog.New(slog.DiscardHandler)); !completed.CreationTime.Equal(at) {
			t.Errorf("%s: snapshot.completed's creation_time %s, restore.completed's snapshot_time %s", c.name, completed.CreationTime, at)
		}
	}
}
