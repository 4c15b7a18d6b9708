package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/harness/csidriver"
	"github.com/stateguard/stateguard/pkg/harness/kubetest"
	"github.com/stateguard/stateguard/pkg/harness/logtest"
	"github.com/stateguard/stateguard/pkg/harness/natstest"
	"github.com/stateguard/stateguard/services/snapshotter/api/v1alpha1"
	"github.com/stateguard/stateguard/services/snapshotter/internal/encryption"
)

// harnessDriverRow documents the test cluster's CSI driver the way
// encryption.Documented documents production drivers: parameter
// encrypted, "true" or "false", nothing set meaning unencrypted.
var harnessDriverRow = encryption.Driver{
	Name: csidriver.DefaultName,
	Params: []encryption.Param{{
		Name: "encrypted",
		On:   func(v string) bool { return v == "true" },
		Off:  func(v string) bool { return v == "false" },
	}},
	Absent: events.EncryptionUnencrypted, AbsentWhy: "the test driver encrypts nothing unless told", Docs: "pkg/harness/csidriver",
}

// TestEncryptionAtRestOnTheCluster runs the service on a cluster with the
// real provisioner, snapshot-controller and csi-snapshotter, and three
// policies with encryption: Required, each on a claim of its own
// StorageClass: one whose class says encrypted=false is not snapshotted
// (snapshot.failed EncryptionRequired, the Encrypted condition False
// naming the class and parameter, no VolumeSnapshot); one whose class says
// encrypted=true is snapshotted and snapshot.completed says encrypted; one
// whose class has a parameter only the operator's allowlist knows is
// snapshotted and says encrypted, citing the allowlist.
func TestEncryptionAtRestOnTheCluster(t *testing.T) {
	routeKlog(slog.New(slog.DiscardHandler))
	encryptionTable = append(slices.Clone(encryption.Documented), harnessDriverRow)
	t.Cleanup(func() { encryptionTable = nil })
	c := kubetest.StartCluster(t, kubetest.Options{WithoutCertManager: true})
	srv := natstest.Run(t)
	kc, err := newClient(c.Config)
	if err != nil {
		t.Fatal(err)
	}

	// One namespace, StorageClass, claim and Required policy per case.
	setup := func(class string, params map[string]string) string {
		t.Helper()
		ns := c.Namespace(t, nil)
		sc := &storagev1.StorageClass{
			ObjectMeta:        metav1.ObjectMeta{Name: class + "-" + ns},
			Provisioner:       csidriver.DefaultName,
			Parameters:        params,
			ReclaimPolicy:     ptr.To(corev1.PersistentVolumeReclaimDelete),
			VolumeBindingMode: ptr.To(storagev1.VolumeBindingImmediate),
		}
		if err := kc.Create(t.Context(), sc); err != nil {
			t.Fatal(err)
		}
		claim := &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "data", Labels: map[string]string{"app": "db"}},
			Spec: corev1.PersistentVolumeClaimSpec{
				StorageClassName: &sc.Name,
				AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
			},
		}
		if err := kc.Create(t.Context(), claim); err != nil {
			t.Fatal(err)
		}
		pol := &v1alpha1.SnapshotPolicy{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "required"},
			Spec: v1alpha1.SnapshotPolicySpec{
				PVCSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
				Schedule:    "@every 2s",
				Retention:   v1alpha1.Retention{KeepLast: 3},
				Encryption:  v1alpha1.EncryptionRequired,
			},
		}
		if err := kc.Create(t.Context(), pol); err != nil {
			t.Fatal(err)
		}
		return ns
	}
	plainNS := setup("plain", map[string]string{"encrypted": "false"})
	encNS := setup("encrypted", map[string]string{"encrypted": "true"})
	allowNS := setup("vendor", map[string]string{"tier": "secure"})

	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := c.WriteKubeconfig(kubeconfig); err != nil {
		t.Fatal(err)
	}
	out := &logtest.Buffer{}
	getenv := func(k string) string {
		return map[string]string{
			"KUBECONFIG": kubeconfig, "NATS_URL": srv.ClientURL(), "HTTP_ADDR": freeAddr(t),
			"POD_NAMESPACE": plainNS, "POD_NAME": "snapshotter-0", "RESYNC": "1s",
			"ENCRYPTION_ALLOW": csidriver.DefaultName + ":tier=secure",
		}[k]
	}
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, nil, getenv, out) }()
	defer func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	ec := natstest.Client(t, srv)
	poll := func(what string, cond func(context.Context) bool) {
		t.Helper()
		if err := wait.PollUntilContextTimeout(t.Context(), 250*time.Millisecond, 120*time.Second, true, func(ctx context.Context) (bool, error) {
			return cond(ctx), nil
		}); err != nil {
			t.Fatalf("waiting for %s: %v\nlogs:\n%s", what, err, out.String())
		}
	}
	completedIn := func(ctx context.Context, ns string) *events.SnapshotCompleted {
		for _, ev := range snapshotEvents(ctx, t, ec, events.TypeSnapshotCompleted) {
			p, err := events.Decode[events.SnapshotCompleted](ev)
			if err != nil {
				t.Fatal(err)
			}
			if p.Namespace == ns {
				return &p
			}
		}
		return nil
	}

	t.Run("an encrypted class is snapshotted and the event says encrypted", func(t *testing.T) {
		var got *events.SnapshotCompleted
		poll("snapshot.completed in "+encNS, func(ctx context.Context) bool { got = completedIn(ctx, encNS); return got != nil })
		if got.Encryption != events.EncryptionEncrypted || !strings.Contains(strings.Join(got.EncryptionEvidence, " "), "encrypted=true") {
			t.Errorf("encryption %q %q, want encrypted citing encrypted=true", got.Encryption, got.EncryptionEvidence)
		}
		checkCondition(t, kc, encNS, metav1.ConditionTrue, v1alpha1.ReasonEncrypted, "data")
	})

	t.Run("an allowlisted driver parameter counts as encrypted", func(t *testing.T) {
		var got *events.SnapshotCompleted
		poll("snapshot.completed in "+allowNS, func(ctx context.Context) bool { got = completedIn(ctx, allowNS); return got != nil })
		if ev := strings.Join(got.EncryptionEvidence, " "); got.Encryption != events.EncryptionEncrypted || !strings.Contains(ev, "allowlist") || !strings.Contains(ev, "tier=secure") {
			t.Errorf("encryption %q %q, want encrypted citing the allowlist entry", got.Encryption, got.EncryptionEvidence)
		}
	})

	t.Run("Required on an unencrypted class takes no snapshot and says why", func(t *testing.T) {
		var failed events.SnapshotFailed
		poll("snapshot.failed in "+plainNS, func(ctx context.Context) bool {
			for _, ev := range snapshotEvents(ctx, t, ec, events.TypeSnapshotFailed) {
				p, err := events.Decode[events.SnapshotFailed](ev)
				if err != nil {
					t.Fatal(err)
				}
				if p.Namespace == plainNS {
					failed = p
					return true
				}
			}
			return false
		})
		if failed.Reason != events.SnapshotFailedEncryptionRequired || failed.PVC != "data" || failed.Policy != "required" ||
			!strings.Contains(failed.Error, "unencrypted") || !strings.Contains(failed.Error, "encrypted=false") {
			t.Errorf("snapshot.failed %+v, want reason EncryptionRequired naming the class's encrypted=false", failed)
		}
		checkCondition(t, kc, plainNS, metav1.ConditionFalse, v1alpha1.ReasonNotEncrypted, "encrypted=false")
		var list snapv1.VolumeSnapshotList
		if err := kc.List(t.Context(), &list, client.InNamespace(plainNS)); err != nil {
			t.Fatal(err)
		}
		if len(list.Items) != 0 {
			t.Errorf("%d VolumeSnapshots of the unencrypted claim, want none", len(list.Items))
		}
		if got := completedIn(t.Context(), plainNS); got != nil {
			t.Errorf("snapshot.completed for the unencrypted claim: %+v", got)
		}
	})
}

// checkCondition waits until the policy "required" in ns has the Encrypted
// condition with status and reason, and its message contains want.
func checkCondition(t *testing.T, kc client.Client, ns string, status metav1.ConditionStatus, reason, want string) {
	t.Helper()
	var last *metav1.Condition
	err := wait.PollUntilContextTimeout(t.Context(), 250*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		var p v1alpha1.SnapshotPolicy
		if err := kc.Get(ctx, client.ObjectKey{Namespace: ns, Name: "required"}, &p); err != nil {
			return false, nil
		}
		last = meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionEncrypted)
		return last != nil && last.Status == status && last.Reason == reason && strings.Contains(last.Message, want), nil
	})
	if err != nil {
		t.Errorf("Encrypted condition in %s = %+v, want %s %s with %q", ns, last, status, reason, want)
	}
}
