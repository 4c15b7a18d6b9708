package rotation

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/utils/ptr"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/harness/kubetest"
	"github.com/stateguard/stateguard/pkg/harness/natstest"

	"github.com/stateguard/stateguard/services/certwatcher/internal/certgentest"
	"github.com/stateguard/stateguard/services/certwatcher/internal/discovery"
	"github.com/stateguard/stateguard/services/certwatcher/internal/inventory"
	"github.com/stateguard/stateguard/services/certwatcher/internal/marks"
	"github.com/stateguard/stateguard/services/certwatcher/internal/streamtest"
)

// TestRotationRollsARealDeployment runs on the full cluster
// (kubetest.StartCluster): the Deployment controller makes a ReplicaSet and
// pods from the Deployment's template and KWOK's node runs them. Discovery
// finds those pods as the TLS Secret's users, resolved to the Deployment;
// a rotation re-issues the certificate and rolls the Deployment, and the
// real controllers finish the rollout — a new ReplicaSet whose pods run,
// the old pods gone — so the executor sees the rollout complete.
// cert-manager is not run (its controller is not served by the Go module
// proxy): the in-cluster CA method is the one used.
func TestRotationRollsARealDeployment(t *testing.T) {
	c := kubetest.StartCluster(t)
	ns := c.Namespace(t, nil)
	ctx := t.Context()
	cs := c.Client

	ca := certgentest.New(t, certgentest.CommonName("stateguard test CA"), certgentest.CA())
	old := certgentest.New(t, certgentest.CommonName("web"), certgentest.DNSNames("web.shop.svc"),
		certgentest.NotAfter(time.Now().Add(10*24*time.Hour)), certgentest.SignedBy(ca))
	must(t)(cs.CoreV1().Secrets(ns).Create(ctx, tlsSecret(ns, "ca", ca.CertPEM, ca.KeyPEM, nil), metav1.CreateOptions{}))
	must(t)(cs.CoreV1().Secrets(ns).Create(ctx, tlsSecret(ns, "web-tls", old.CertPEM, old.KeyPEM, map[string]string{CASecretAnnotation: ns + "/ca"}), metav1.CreateOptions{}))
	dep := deployment("web", "web-tls", false)
	dep.Spec.Replicas = ptr.To[int32](2)
	must(t)(cs.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{}))

	// running returns the names of web's running pods and their
	// ReplicaSets once every replica runs from the Deployment's current
	// template, and no other pod is left.
	running := func(ctx context.Context) (pods, rsets []string, ok bool) {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil || d.Status.ObservedGeneration < d.Generation || d.Status.UpdatedReplicas != 2 || d.Status.ReadyReplicas != 2 || d.Status.Replicas != 2 {
			return nil, nil, false
		}
		list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil || len(list.Items) != 2 {
			return nil, nil, false
		}
		for _, p := range list.Items {
			owner := metav1.GetControllerOf(&p)
			if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning || owner == nil || owner.Kind != "ReplicaSet" {
				return nil, nil, false
			}
			pods = append(pods, p.Name)
			if !slices.Contains(rsets, owner.Name) {
				rsets = append(rsets, owner.Name)
			}
		}
		slices.Sort(pods)
		return pods, rsets, len(rsets) == 1
	}
	var before, beforeRS []string
	poll(t, "2 running pods of Deployment web", func(ctx context.Context) bool {
		var ok bool
		before, beforeRS, ok = running(ctx)
		return ok
	})

	// Discovery sees the controller's pods as users of the Secret, and
	// resolves them through their ReplicaSet to the Deployment.
	d, err := discovery.New(ctx, discovery.Options{Client: cs, Namespaces: []string{ns}, Store: inventory.New(nil), Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	dctx, stop := context.WithCancel(ctx)
	defer stop()
	d.Start(dctx)
	var users events.CertificateUsers
	poll(t, "discovery to see web's pods", func(context.Context) bool {
		users = d.Users(ns, "web-tls")
		return len(users.Pods) == 2
	})
	var gotPods []string
	for _, p := range users.Pods {
		gotPods = append(gotPods, p.Name)
	}
	if diff := cmp.Diff(before, gotPods); diff != "" {
		t.Errorf("users' pods (-running +discovered):\n%s", diff)
	}
	wantWorkload := events.WorkloadRef{Kind: "Deployment", Namespace: ns, Name: "web"}
	for _, w := range users.Workloads {
		if w != wantWorkload {
			t.Errorf("workload %+v, want %+v", w, wantWorkload)
		}
	}

	// The rotation: re-issue from the CA, roll web; the rollout completes
	// within the executor's wait.
	srv := natstest.Run(t)
	ec := natstest.Client(t, srv)
	kv, err := marks.Open(ctx, ec.JetStream(), "certwatcher", 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Options{
		Client: cs, Dynamic: dyn, Events: ec, Marks: kv, Log: slog.New(slog.DiscardHandler), Rate: 100, Burst: 10,
		ReissueTimeout: 30 * time.Second, RolloutTimeout: 2 * time.Minute, VerifyTimeout: 2 * time.Second, PollInterval: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := events.NewEvent(events.TypeCertificateRotationRequest, "/test/operator", "request-cluster-1",
		events.CertificateRotationRequested{RequestID: "req-cluster-1", Namespace: ns, Secret: "web-tls", Reason: "expiring"})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := e.Handle(ctx, ev); err != nil {
		t.Fatalf("handle: %v", err)
	}
	rolledIn := time.Since(start)
	stored := streamtest.Payloads[events.CertificateRotated](t, streamtest.Stored(t, ec, events.TypeCertificateRotated))
	if len(stored) != 1 {
		t.Fatalf("%d certificate.rotated events, want 1", len(stored))
	}
	rot := stored[0]
	if rot.Method != MethodInClusterCA || rot.NewSerial == rot.OldSerial || !cmp.Equal(rot.Rolled, []events.WorkloadRef{wantWorkload}) {
		t.Errorf("certificate.rotated %+v, want web rolled with a new serial", rot)
	}
	// No Service selects web, so TLS is not verified; but the rollout
	// must have completed within the executor's wait.
	if strings.Contains(rot.Verification.Error, "rollout not complete") {
		t.Errorf("verification error %q: the rollout did not complete", rot.Verification.Error)
	}

	// A new ReplicaSet runs web; the old pods are gone.
	var after, afterRS []string
	poll(t, "web rolled to a new ReplicaSet", func(ctx context.Context) bool {
		var ok bool
		after, afterRS, ok = running(ctx)
		return ok && afterRS[0] != beforeRS[0]
	})
	for _, p := range after {
		if slices.Contains(before, p) {
			t.Errorf("pod %s of the old ReplicaSet still runs", p)
		}
	}
	old2, err := cs.AppsV1().ReplicaSets(ns).Get(ctx, beforeRS[0], metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := ptr.Deref(old2.Spec.Replicas, -1); n != 0 {
		t.Errorf("old ReplicaSet %s has %d replicas, want 0", old2.Name, n)
	}
	poll(t, "discovery to see the new pods only", func(context.Context) bool {
		var got []string
		for _, p := range d.Users(ns, "web-tls").Pods {
			got = append(got, p.Name)
		}
		return cmp.Equal(after, got)
	})
	t.Logf("cluster started in %s; rotation and rollout of 2 pods took %s", c.Startup.Round(time.Millisecond), rolledIn.Round(time.Millisecond))
}

// poll waits for cond, failing the test after two minutes of real time.
func poll(t *testing.T, what string, cond func(ctx context.Context) bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		return cond(ctx), nil
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}
