package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/harness/kubetest"
	"github.com/stateguard/stateguard/services/correlator/internal/scenariotest"
)

func dyn(t *testing.T) dynamic.Interface {
	t.Helper()
	d, err := dynamic.NewForConfig(kube(t).Config)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func createPVC(t *testing.T, ns, name string, lbls map[string]string) {
	t.Helper()
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: lbls},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
	if _, err := kube(t).Client.CoreV1().PersistentVolumeClaims(ns).Create(t.Context(), pvc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// createObject creates obj (its status through the status subresource,
// as the controller that owns it would write it).
func createObject(t *testing.T, gvr schema.GroupVersionResource, ns string, obj map[string]any) {
	t.Helper()
	u := &unstructured.Unstructured{Object: obj}
	status, hasStatus := obj["status"]
	created, err := dyn(t).Resource(gvr).Namespace(ns).Create(t.Context(), u, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create %s %s: %v", gvr.Resource, u.GetName(), err)
	}
	if hasStatus {
		created.Object["status"] = status
		if _, err := dyn(t).Resource(gvr).Namespace(ns).UpdateStatus(t.Context(), created, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("status of %s %s: %v", gvr.Resource, u.GetName(), err)
		}
	}
}

func snapshotPolicy(name string, selector map[string]any, status map[string]any) map[string]any {
	obj := map[string]any{
		"apiVersion": "stateguard.io/v1alpha1", "kind": "SnapshotPolicy",
		"metadata": map[string]any{"name": name},
		"spec": map[string]any{"pvcSelector": map[string]any{"matchLabels": selector}, "schedule": "0 * * * *",
			"retention": map[string]any{"keepLast": int64(3)}},
	}
	if status != nil {
		obj["status"] = status
	}
	return obj
}

func volumeSnapshot(name, pvc string, lbls, annotations map[string]any, status map[string]any) map[string]any {
	return map[string]any{
		"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
		"metadata": map[string]any{"name": name, "labels": lbls, "annotations": annotations},
		"spec":     map[string]any{"source": map[string]any{"persistentVolumeClaimName": pvc}},
		"status":   status,
	}
}

// row returns the fields of the line of a table whose second column is
// name.
func row(t *testing.T, table, name string) []string {
	t.Helper()
	for line := range strings.Lines(table) {
		f := strings.Fields(line)
		if len(f) > 1 && f[1] == name {
			return f
		}
	}
	t.Fatalf("no row %s in:\n%s", name, table)
	return nil
}

// TestPolicyAndSnapshotCommands on a real API server (objects admitted by
// the shipped CRDs, statuses written as the controllers write them) and a
// real correlator that knows one of the snapshots.
func TestPolicyAndSnapshotCommands(t *testing.T) {
	k := kube(t)
	c := startCorrelator(t)
	ns := k.Namespace(t, nil)
	env := map[string]string{"KUBECONFIG": kubeconfig(t), "STATEGUARD_SERVER": c.url, "STATEGUARD_TOKEN": readToken}
	createPVC(t, ns, "data", map[string]string{"app": "db"})
	createPVC(t, ns, "cache", map[string]string{"app": "web"})
	next := time.Now().Add(time.Hour).UTC().Truncate(time.Hour).Format(time.RFC3339)
	createObject(t, gvrPolicy, ns, snapshotPolicy("hourly", map[string]any{"app": "db"}, map[string]any{
		"lastResult": "Succeeded", "lastSnapshot": "hourly-data-1", "nextRun": next, "lastRun": "2026-12-07T02:00:00Z",
		"conditions": []any{map[string]any{"type": "Ready", "status": "True", "reason": "Scheduled", "message": "the spec is valid and the schedule runs",
			"lastTransitionTime": "2026-12-07T01:00:00Z"}}}))
	createObject(t, gvrPolicy, ns, snapshotPolicy("broken", map[string]any{"app": "web"}, map[string]any{
		"conditions": []any{map[string]any{"type": "Ready", "status": "False", "reason": "InvalidTimeZone", "message": "unknown time zone Mars/Olympus",
			"lastTransitionTime": "2026-12-07T01:00:00Z"}}}))
	createObject(t, gvrPolicy, ns, snapshotPolicy("new", map[string]any{"app": "none"}, nil))
	createObject(t, gvrSnapshot, ns, volumeSnapshot("hourly-data-1", "data",
		map[string]any{labelPolicy: "hourly", labelPVC: "data", labelPinned: "true"},
		map[string]any{annotationPinnedReason: "known-good: the newest clean snapshot", annotationSlot: "2026-12-07T02:00:00Z"},
		map[string]any{"readyToUse": true, "restoreSize": "1Gi", "creationTime": "2026-12-07T02:00:03Z"}))
	createObject(t, gvrSnapshot, ns, volumeSnapshot("hourly-data-2", "data",
		map[string]any{labelPolicy: "hourly", labelPVC: "data"}, nil,
		map[string]any{"readyToUse": false, "error": map[string]any{"message": "simulated CSI failure"}}))
	// The correlator saw the first snapshot and a clean scan of what ran.
	if err := c.client.Publish(t.Context(),
		scenariotest.SARIF(ns, "db", "u1", "v1", scenariotest.T0),
		scenariotest.Snapshot(ns, "data", "hourly-data-1", scenariotest.T0.Add(time.Hour), scenariotest.Run{App: "db", Versions: []string{"v1"}})); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the correlator knows the snapshot", func() bool {
		return ctl(t, env, "why", ns+"/hourly-data-1").code == 0
	})

	r := ctl(t, env, "policy", "get", ns).must(t)
	if got := row(t, r.stdout, "hourly"); strings.Join(got[2:], " ") != "True Scheduled 0 * * * * Succeeded hourly-data-1 "+next {
		t.Errorf("hourly: %v", got)
	}
	if got := row(t, r.stdout, "broken"); got[2] != "False" || got[3] != "InvalidTimeZone" {
		t.Errorf("broken: %v", got)
	}
	if got := row(t, r.stdout, "new"); got[2] != "Unknown" || got[3] != "NotReconciled" {
		t.Errorf("a policy the snapshotter has not read: %v", got)
	}
	ctl(t, env, "policy", "get", ns, "-o", "wide").must(t).has(t, "unknown time zone Mars/Olympus", "app=db", "2026-12-07T02:00:00Z")
	var list struct {
		Kind  string
		Items []unstructured.Unstructured
	}
	if err := yaml.Unmarshal([]byte(ctl(t, env, "policy", "get", ns+"/hourly", "-o", "yaml").must(t).stdout), &list); err != nil ||
		list.Kind != "List" || len(list.Items) != 1 || list.Items[0].GetName() != "hourly" {
		t.Errorf("-o yaml: %v %+v", err, list)
	}
	ctl(t, env, "policy", "describe", ns+"/hourly").must(t).has(t, "policy "+ns+"/hourly", "ready:          True (Scheduled)",
		"selects PVCs:   data", "snapshots:      2", "hourly-data-1  pvc data  ready true  pinned yes", "retention:      keepLast=3")
	if r := ctl(t, env, "policy", "describe", ns+"/nope"); r.code != exitNotFound {
		t.Errorf("an unknown policy: exit %d %q, want %d", r.code, r.stderr, exitNotFound)
	}

	r = ctl(t, env, "snapshot", "get", ns).must(t)
	if got := row(t, r.stdout, "hourly-data-1"); strings.Join(got[2:7], " ") != "data true yes clean yes" {
		t.Errorf("hourly-data-1 (pvc ready pinned verdict known-good): %v", got)
	}
	if got := row(t, r.stdout, "hourly-data-2"); strings.Join(got[2:7], " ") != "data false - - -" {
		t.Errorf("hourly-data-2, unknown to the correlator: %v", got)
	}
	ctl(t, env, "snapshot", "get", ns, "-o", "wide").must(t).has(t, "simulated CSI failure", "known-good: the newest clean snapshot", "1Gi")
	var rows []snapshotRow
	if err := json.Unmarshal([]byte(ctl(t, env, "snapshot", "get", ns+"/hourly-data-1", "-o", "json").must(t).stdout), &rows); err != nil ||
		len(rows) != 1 || rows[0].Verdict != "clean" || !rows[0].KnownGood || rows[0].Policy != "hourly" {
		t.Errorf("-o json: %v %+v", err, rows)
	}
	ctl(t, env, "snapshot", "describe", ns+"/hourly-data-1").must(t).has(t, "pinned:     yes: known-good", "slot:       2026-12-07T02:00:00Z",
		"correlator:", "app db: clean", "known-good: the newest clean, ready snapshot")
	ctl(t, env, "snapshot", "describe", ns+"/hourly-data-2").must(t).has(t, "error:      simulated CSI failure", "correlator: knows nothing of this snapshot")
	if r := ctl(t, env, "snapshot", "describe", ns+"/nope"); r.code != exitNotFound {
		t.Errorf("an unknown snapshot: exit %d %q, want %d", r.code, r.stderr, exitNotFound)
	}
	// Without the correlator the cluster's facts still show.
	down := map[string]string{"KUBECONFIG": env["KUBECONFIG"], "STATEGUARD_SERVER": "http://127.0.0.1:1"}
	r = ctl(t, down, "snapshot", "get", ns).must(t)
	if got := row(t, r.stdout, "hourly-data-1"); got[5] != "?" || !strings.Contains(r.stderr, "warning: no verdicts from the correlator") {
		t.Errorf("correlator down: %v, stderr %q", got, r.stderr)
	}
}

// requestOf returns the snapshot-request annotation of a policy.
func requestOf(t *testing.T, ns, name string) string {
	t.Helper()
	u, err := dyn(t).Resource(gvrPolicy).Namespace(ns).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return u.GetAnnotations()[annotationSnapshotRequest]
}

// actAsSnapshotter waits for a request on the policy and answers it as the
// snapshotter does (status.lastRequest, then the VolumeSnapshot, ready);
// a non-empty refusal answers with that error instead.
func actAsSnapshotter(t *testing.T, ns, policyName, snapshot, refusal string) <-chan error {
	done := make(chan error, 1)
	go func() {
		var req string
		deadline := time.Now().Add(30 * time.Second)
		for req == "" && time.Now().Before(deadline) {
			u, err := dyn(t).Resource(gvrPolicy).Namespace(ns).Get(t.Context(), policyName, metav1.GetOptions{})
			if err != nil {
				done <- err
				return
			}
			req = u.GetAnnotations()[annotationSnapshotRequest]
			if req == "" {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			lr := map[string]any{"request": req}
			if refusal != "" {
				lr["error"] = refusal
			} else {
				lr["snapshot"] = snapshot
			}
			u.Object["status"] = map[string]any{"lastRequest": lr}
			if _, err := dyn(t).Resource(gvrPolicy).Namespace(ns).UpdateStatus(t.Context(), u, metav1.UpdateOptions{}); err != nil {
				done <- err
				return
			}
		}
		if refusal == "" {
			vs := volumeSnapshot(snapshot, "data", map[string]any{labelPolicy: policyName}, nil, map[string]any{"readyToUse": true})
			u := &unstructured.Unstructured{Object: vs}
			created, err := dyn(t).Resource(gvrSnapshot).Namespace(ns).Create(t.Context(), u, metav1.CreateOptions{})
			if err != nil {
				done <- err
				return
			}
			time.Sleep(300 * time.Millisecond) // the CLI sees it not ready first
			created.Object["status"] = map[string]any{"readyToUse": true}
			_, err = dyn(t).Resource(gvrSnapshot).Namespace(ns).UpdateStatus(t.Context(), created, metav1.UpdateOptions{})
			done <- err
			return
		}
		done <- nil
	}()
	return done
}

// TestSnapshotCreate: the CLI writes the request the snapshotter carries
// out (services/snapshotter/internal/controller's TestOnDemandSnapshot
// takes the snapshot from such a value on the real API server) to the one
// policy that selects the PVC, and with --wait follows the policy's
// status.lastRequest to the snapshot; here the test answers as the
// snapshotter would.
func TestSnapshotCreate(t *testing.T) {
	k := kube(t)
	ns := k.Namespace(t, nil)
	env := map[string]string{"KUBECONFIG": kubeconfig(t)}
	createPVC(t, ns, "data", map[string]string{"app": "db"})
	createObject(t, gvrPolicy, ns, snapshotPolicy("hourly", map[string]any{"app": "db"}, nil))
	createObject(t, gvrPolicy, ns, snapshotPolicy("web", map[string]any{"app": "web"}, nil))

	before := time.Now().UTC().Truncate(time.Second)
	ctl(t, env, "snapshot", "create", ns+"/data", "--wait", "0").must(t).has(t, "snapshot of "+ns+"/data requested from policy hourly (data@")
	req := requestOf(t, ns, "hourly")
	m := regexp.MustCompile(`^data@(.+)$`).FindStringSubmatch(req)
	if m == nil {
		t.Fatalf("request %q, want data@<time>", req)
	}
	at, err := time.Parse(time.RFC3339, m[1])
	if err != nil || at.Before(before) || at.After(time.Now().Add(time.Second)) {
		t.Errorf("request time %q (%v): want now in RFC 3339", m[1], err)
	}
	if requestOf(t, ns, "web") != "" {
		t.Error("the policy that does not select the PVC got a request")
	}

	for _, tt := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"a PVC that does not exist", []string{ns + "/gone"}, exitNotFound, `persistentvolumeclaims "gone" not found`},
		{"a policy that does not select it", []string{ns + "/data", "--policy", "web"}, exitNotFound, "does not exist or does not select PVC data"},
	} {
		if r := ctl(t, env, append([]string{"snapshot", "create", "--wait", "0"}, tt.args...)...); r.code != tt.code || !strings.Contains(r.stderr, tt.msg) {
			t.Errorf("%s: exit %d %q, want %d and %q", tt.name, r.code, r.stderr, tt.code, tt.msg)
		}
	}
	createObject(t, gvrPolicy, ns, snapshotPolicy("daily", map[string]any{"app": "db"}, nil))
	if r := ctl(t, env, "snapshot", "create", ns+"/data"); r.code != exitUsage || !strings.Contains(r.stderr, "SnapshotPolicies daily, hourly select PVC data: choose one with --policy") {
		t.Errorf("two policies select it: exit %d %q, want %d asking for --policy", r.code, r.stderr, exitUsage)
	}

	done := actAsSnapshotter(t, ns, "daily", "daily-data-20261207031500", "")
	ctl(t, env, "snapshot", "create", ns+"/data", "--policy", "daily", "--wait", "60s").must(t).
		has(t, "volume snapshot "+ns+"/daily-data-20261207031500 ready (policy daily, request data@")
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// A refusal ends the wait with the snapshotter's reason.
	if _, err := dyn(t).Resource(gvrPolicy).Namespace(ns).Patch(t.Context(), "hourly", "application/merge-patch+json",
		[]byte(`{"metadata":{"annotations":{"`+annotationSnapshotRequest+`":null}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	done = actAsSnapshotter(t, ns, "hourly", "", "a pre hook failed (snapshot.failed was published)")
	if r := ctl(t, env, "snapshot", "create", ns+"/data", "--policy", "hourly", "--wait", "60s"); r.code != exitError || !strings.Contains(r.stderr, "refused request data@") ||
		!strings.Contains(r.stderr, "a pre hook failed") {
		t.Errorf("a refused request: exit %d %q, want 1 with the reason", r.code, r.stderr)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// applyRBAC creates the ServiceAccounts, roles and bindings of
// deploy/kustomize/base/rbac in namespace stateguard.
func applyRBAC(t *testing.T) {
	t.Helper()
	root, err := kubetest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(root, "deploy", "kustomize", "base", "rbac", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("rbac files: %v", err)
	}
	rbac := func(r string) schema.GroupVersionResource {
		return schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: r}
	}
	gvrs := map[string]schema.GroupVersionResource{
		"ServiceAccount": {Version: "v1", Resource: "serviceaccounts"},
		"Role":           rbac("roles"), "RoleBinding": rbac("rolebindings"),
		"ClusterRole": rbac("clusterroles"), "ClusterRoleBinding": rbac("clusterrolebindings"),
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for doc := range strings.SplitSeq(string(b), "\n---") {
			var u unstructured.Unstructured
			if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if u.Object == nil {
				continue
			}
			gvr, ok := gvrs[u.GetKind()]
			if !ok {
				t.Fatalf("%s: kind %s", f, u.GetKind())
			}
			ri := dyn(t).Resource(gvr)
			var err error
			if strings.HasPrefix(u.GetKind(), "Cluster") {
				_, err = ri.Create(t.Context(), &u, metav1.CreateOptions{})
			} else {
				_, err = ri.Namespace("stateguard").Create(t.Context(), &u, metav1.CreateOptions{})
			}
			if err != nil && !apierrors.IsAlreadyExists(err) {
				t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
			}
		}
	}
}

// checkLines runs check and returns its exit code and each line's status
// by check name.
func checkLines(t *testing.T, env map[string]string) (int, map[string]checkResult, result) {
	t.Helper()
	r := ctl(t, env, "check", "--correlator-consumer", consumerPrefix, "-o", "json")
	var results []checkResult
	if err := json.Unmarshal([]byte(r.stdout), &results); err != nil {
		t.Fatalf("check -o json: %v\n%s\n%s", err, r.stdout, r.stderr)
	}
	out := map[string]checkResult{}
	for _, c := range results {
		out[c.Check] = c
	}
	return r.code, out, r
}

// TestCheck: against a real JetStream, correlator API and API server,
// check finds what is missing (other services' consumers, the service
// accounts' rights) and passes once it is there.
func TestCheck(t *testing.T) {
	k := kube(t)
	c := startCorrelator(t)
	if _, err := k.Client.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "stateguard"}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	env := map[string]string{"KUBECONFIG": kubeconfig(t), "STATEGUARD_SERVER": c.url, "STATEGUARD_TOKEN": readToken, "NATS_URL": c.nats}

	code, lines, r := checkLines(t, env)
	if code != exitError {
		t.Errorf("check before the RBAC and consumers: exit %d, want 1", code)
	}
	for name, want := range map[string]string{
		"correlator api " + c.url: checkOK, "correlator api token": checkOK, "nats": checkOK,
		"stream SNAPSHOT": checkOK, "stream DEADLETTER": checkOK,
		"consumer SNAPSHOT:snapshotter-pins": checkFail, "consumer CERTIFICATE:certwatcher-rotation": checkFail,
		"consumer DECISION:snapshotter-restores": checkFail, "consumer DECISION:snapshotter-recommendations": checkFail,
		"crd snapshotpolicies.stateguard.io": checkOK, "crd volumesnapshots.snapshot.storage.k8s.io": checkOK,
		"rbac snapshotter list snapshotpolicies.stateguard.io": checkFail, "rbac certwatcher update secrets": checkFail,
		"rbac correlator get secrets": checkOK, "rbac you patch snapshotpolicies.stateguard.io": checkOK,
		"crd restores.stateguard.io": checkOK, "rbac snapshotter create restores.stateguard.io": checkFail,
		"rbac snapshotter patch restores/status.stateguard.io": checkFail, "rbac you list restores.stateguard.io": checkOK,
	} {
		if got := lines[name]; got.Status != want {
			t.Errorf("%s: %+v, want %s\n%s", name, got, want, r.stdout)
		}
	}
	for name, l := range lines {
		if strings.HasPrefix(name, "consumer ") && strings.Contains(name, ":"+consumerPrefix+"-") && l.Status != checkOK {
			t.Errorf("the correlator's consumer %s: %+v", name, l)
		}
	}
	ctl(t, env, "check", "--correlator-consumer", consumerPrefix).has(t, "FAIL  consumer SNAPSHOT:snapshotter-pins", "ok    nats")

	applyRBAC(t)
	for _, cc := range []events.ConsumerConfig{{Stream: events.StreamSnapshot, Name: "snapshotter-pins"}, {Stream: events.StreamCertificate, Name: "certwatcher-rotation"},
		{Stream: events.StreamDecision, Name: "snapshotter-restores"}, {Stream: events.StreamDecision, Name: "snapshotter-recommendations"}} {
		if err := c.client.EnsureConsumer(t.Context(), cc); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "check passes once the RBAC and the consumers exist", func() bool {
		code, _, _ := checkLines(t, env)
		return code == 0
	})

	bad := map[string]string{"KUBECONFIG": env["KUBECONFIG"], "STATEGUARD_SERVER": c.url, "STATEGUARD_TOKEN": "guess", "NATS_URL": "nats://127.0.0.1:1"}
	code, lines, _ = checkLines(t, bad)
	if code != exitError || lines["correlator api token"].Status != checkFail || lines["nats"].Status != checkFail || !strings.Contains(lines["correlator api token"].Detail, "401") {
		t.Errorf("a wrong token and NATS down: exit %d, %+v", code, lines)
	}
}
