package controller_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/snapshotter/api/v1alpha1"
	"github.com/stateguard/stateguard/services/snapshotter/internal/controller"
	"github.com/stateguard/stateguard/services/snapshotter/internal/metrics"
)

// rawPolicy is a SnapshotPolicy as JSON-like maps, so that a test can write
// fields the Go types would not let it write: it selects app=db hourly, and
// fields are merged over the spec.
func rawPolicy(ns, name string, spec map[string]any) *unstructured.Unstructured {
	s := map[string]any{
		"pvcSelector": map[string]any{"matchLabels": map[string]any{"app": "db"}},
		"schedule":    "0 * * * *",
	}
	for k, v := range spec {
		s[k] = v
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v1alpha1.GroupVersion.String(),
		"kind":       "SnapshotPolicy",
		"metadata":   map[string]any{"namespace": ns, "name": name},
		"spec":       s,
	}}
	return u
}

// TestAdmissionRefusesInvalidSpecs sends policies with fields that cannot
// run to the API server and checks it refuses each one, naming the field
// and saying what is expected; and that the usual valid values pass.
func TestAdmissionRefusesInvalidSpecs(t *testing.T) {
	ns := namespace(t)
	const durationMsg = "must be a Go duration such as 90m, 36h or 2160h"
	const cronMsg = "must be a cron expression of five fields"
	hook := func(timeout string) map[string]any {
		return map[string]any{"pre": []any{map[string]any{"command": []any{"true"}, "timeout": timeout}}}
	}
	refused := []struct {
		name      string
		spec      map[string]any
		field     string
		wantInMsg string
	}{
		{"maxAge in days", map[string]any{"retention": map[string]any{"maxAge": "3 days"}}, "spec.retention.maxAge", durationMsg},
		{"maxAge with a d unit", map[string]any{"retention": map[string]any{"maxAge": "90d"}}, "spec.retention.maxAge", "write 72h for 3 days"},
		{"negative maxAge", map[string]any{"retention": map[string]any{"maxAge": "-1h"}}, "spec.retention.maxAge", durationMsg},
		{"hook timeout in words", map[string]any{"hooks": hook("30 seconds")}, "spec.hooks.pre[0].timeout", durationMsg},
		{"hook timeout without unit", map[string]any{"hooks": hook("30")}, "spec.hooks.pre[0].timeout", durationMsg},
		{"schedule in words", map[string]any{"schedule": "every day"}, "spec.schedule", cronMsg},
		{"schedule of four fields", map[string]any{"schedule": "0 * * *"}, "spec.schedule", cronMsg},
		{"schedule with seconds", map[string]any{"schedule": "0 0 * * * *"}, "spec.schedule", cronMsg},
		{"schedule with a time zone prefix", map[string]any{"schedule": "CRON_TZ=UTC 0 * * *"}, "spec.schedule", "set the time zone in timeZone"},
		{"unknown descriptor", map[string]any{"schedule": "@fortnightly"}, "spec.schedule", cronMsg},
		{"restore test schedule", map[string]any{"restoreTest": map[string]any{"schedule": "weekly", "image": "busybox"}}, "spec.restoreTest.schedule", cronMsg},
		{"time zone with a space", map[string]any{"timeZone": "Europe Berlin"}, "spec.timeZone", "must be an IANA time zone name"},
	}
	for i, tt := range refused {
		t.Run("refused: "+tt.name, func(t *testing.T) {
			err := kc.Create(t.Context(), rawPolicy(ns, fmt.Sprintf("refused-%d", i), tt.spec))
			if !apierrors.IsInvalid(err) {
				t.Fatalf("create: %v, want the API server to refuse it as invalid", err)
			}
			if msg := err.Error(); !strings.Contains(msg, tt.field) || !strings.Contains(msg, tt.wantInMsg) {
				t.Errorf("refusal %q does not name %s and say %q", msg, tt.field, tt.wantInMsg)
			}
		})
	}
	accepted := []struct {
		name string
		spec map[string]any
	}{
		{"durations of every unit", map[string]any{"retention": map[string]any{"maxAge": "2160h30m1.5s"}, "hooks": hook("500ms")}},
		{"zero maxAge", map[string]any{"retention": map[string]any{"maxAge": "0"}}},
		{"cron lists, ranges and steps", map[string]any{"schedule": "0,30 */6 1-15 JAN-JUN MON-FRI"}},
		{"descriptor", map[string]any{"schedule": "@daily", "timeZone": "America/Argentina/Buenos_Aires"}},
		{"@every", map[string]any{"schedule": "@every 90m", "timeZone": "Etc/GMT+5"}},
	}
	for i, tt := range accepted {
		t.Run("accepted: "+tt.name, func(t *testing.T) {
			if err := kc.Create(t.Context(), rawPolicy(ns, fmt.Sprintf("accepted-%d", i), tt.spec)); err != nil {
				t.Fatalf("create: %v", err)
			}
		})
	}
}

const policyCRD = "snapshotpolicies.stateguard.io"

// createBypassingValidation creates objs as a cluster that installed the
// CRD before it validated these fields would have stored them: it removes
// every x-kubernetes-validations rule from the CRD, creates the objects,
// and puts the CRD back as it was.
func createBypassingValidation(t *testing.T, objs ...*unstructured.Unstructured) {
	t.Helper()
	ctx := t.Context()
	crd := &unstructured.Unstructured{}
	crd.SetAPIVersion("apiextensions.k8s.io/v1")
	crd.SetKind("CustomResourceDefinition")
	if err := kc.Get(ctx, client.ObjectKey{Name: policyCRD}, crd); err != nil {
		t.Fatal(err)
	}
	origSpec, _, _ := unstructured.NestedFieldCopy(crd.Object, "spec")
	relaxed := crd.DeepCopy()
	validated := stripValidations(relaxed.Object["spec"])
	restore := func(ctx context.Context) error {
		return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			cur := crd.DeepCopy()
			if err := kc.Get(ctx, client.ObjectKey{Name: policyCRD}, cur); err != nil {
				return false, nil
			}
			cur.Object["spec"] = origSpec
			return kc.Update(ctx, cur) == nil, nil
		})
	}
	if err := kc.Update(ctx, relaxed); err != nil {
		t.Fatalf("relax the CRD: %v", err)
	}
	t.Cleanup(func() { _ = restore(context.Background()) })
	for _, o := range objs {
		// The API server applies the relaxed schema a moment later.
		pollUntil(t, "creating "+o.GetName()+" without validation", func() bool { return kc.Create(ctx, o.DeepCopy()) == nil })
	}
	if err := restore(ctx); err != nil {
		t.Fatalf("restore the CRD: %v", err)
	}
	if validated {
		probe := rawPolicy(objs[0].GetNamespace(), "probe", map[string]any{"retention": map[string]any{"maxAge": "3 days"}})
		pollUntil(t, "the CRD validating again", func() bool {
			return apierrors.IsInvalid(kc.Create(ctx, probe.DeepCopy(), client.DryRunAll))
		})
	}
}

// stripValidations removes every x-kubernetes-validations under v and says
// whether there was one.
func stripValidations(v any) bool {
	found := false
	switch x := v.(type) {
	case map[string]any:
		if _, ok := x["x-kubernetes-validations"]; ok {
			delete(x, "x-kubernetes-validations")
			found = true
		}
		for _, c := range x {
			found = stripValidations(c) || found
		}
	case []any:
		for _, c := range x {
			found = stripValidations(c) || found
		}
	}
	return found
}

// readyOf returns the status of the policy's Ready condition, its reason
// and message, and its nextRun, read as JSON so that a policy whose spec the
// Go types could not decode is read too.
func readyOf(t *testing.T, ns, name string) (status, reason, message string, nextRun any) {
	t.Helper()
	u := rawPolicy(ns, name, nil)
	if err := kc.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, u); err != nil {
		t.Fatal(err)
	}
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Ready" {
			status, _ = m["status"].(string)
			reason, _ = m["reason"].(string)
			message, _ = m["message"].(string)
		}
	}
	nextRun, _, _ = unstructured.NestedFieldNoCopy(u.Object, "status", "nextRun")
	return status, reason, message, nextRun
}

// policyTable returns the cells kubectl get would print for each policy of
// ns, by policy name and column name.
func policyTable(t *testing.T, ns string) map[string]map[string]any {
	t.Helper()
	raw, err := env.Client.CoreV1().RESTClient().Get().
		AbsPath("/apis/stateguard.io/v1alpha1/namespaces", ns, "snapshotpolicies").
		SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").
		DoRaw(t.Context())
	if err != nil {
		t.Fatalf("get table: %v: %s", err, raw)
	}
	var table struct {
		ColumnDefinitions []struct {
			Name string `json:"name"`
		} `json:"columnDefinitions"`
		Rows []struct {
			Cells []any `json:"cells"`
		} `json:"rows"`
	}
	if err := json.Unmarshal(raw, &table); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for _, r := range table.Rows {
		cells := map[string]any{}
		for i, c := range table.ColumnDefinitions {
			cells[c.Name] = r.Cells[i]
		}
		name, _ := cells["Name"].(string)
		out[name] = cells
	}
	return out
}

// TestInvalidPolicyDoesNotBlockOthers stores policies that cannot run next
// to a valid one: two written before the CRD validated their fields
// (maxAge: 3 days, a hook timeout in words) and one that passes admission
// but names no known time zone. The valid policy snapshots at each of its
// slots; each invalid one gets Ready=False with its reason, a Warning Event
// and a count in stateguard_snapshotter_policy_errors_total, and runs
// nothing, until it is fixed.
func TestInvalidPolicyDoesNotBlockOthers(t *testing.T) {
	ns := namespace(t)
	create(t, pvc(ns, "data", map[string]string{"app": "db"}))
	createBypassingValidation(t,
		rawPolicy(ns, "stale-max-age", map[string]any{"retention": map[string]any{"keepLast": int64(1), "maxAge": "3 days"}}),
		rawPolicy(ns, "bad-timeout", map[string]any{"hooks": map[string]any{"pre": []any{map[string]any{"command": []any{"true"}, "timeout": "30 seconds"}}}}),
	)
	if err := kc.Create(t.Context(), rawPolicy(ns, "mars", map[string]any{"timeZone": "Mars/Olympus_Mons"})); err != nil {
		t.Fatalf("create a policy with an unknown time zone: %v", err)
	}
	p := policy(t, ns, "hourly")

	r := newRig(t, ns, p.CreationTimestamp.Time)
	reg := prometheus.NewRegistry()
	r.ctrl.Metrics = metrics.New(reg)
	broadcaster := record.NewBroadcaster()
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: env.Client.CoreV1().Events("")})
	t.Cleanup(broadcaster.Shutdown)
	scheme, err := controller.Scheme()
	if err != nil {
		t.Fatal(err)
	}
	r.ctrl.Recorder = broadcaster.NewRecorder(scheme, corev1.EventSource{Component: "stateguard-snapshotter"})

	for hour := 1; hour <= 2; hour++ {
		r.clock.SetTime(nextHour(p.CreationTimestamp.Time, hour))
		slot := r.clock.Now().Truncate(time.Hour).UTC()
		want := "hourly-data-" + slot.Format("200601021504")
		r.until(want+" reported", func() bool {
			for _, ev := range r.published(events.TypeSnapshotCompleted) {
				if decode[events.SnapshotCompleted](t, ev).VolumeSnapshot == want {
					return true
				}
			}
			return false
		})
		var got v1alpha1.SnapshotPolicy
		if err := kc.Get(t.Context(), client.ObjectKeyFromObject(p), &got); err != nil {
			t.Fatal(err)
		}
		if got.Status.LastRun == nil || !got.Status.LastRun.Time.Equal(slot) || got.Status.LastSnapshot != want {
			t.Errorf("hour %d: valid policy lastRun %v lastSnapshot %q, want %v and %s", hour, got.Status.LastRun, got.Status.LastSnapshot, slot, want)
		}
	}
	for _, s := range r.snapshots() {
		if pol := s.Labels[v1alpha1.LabelPolicy]; pol != "hourly" {
			t.Errorf("snapshot %s of invalid policy %q was taken", s.Name, pol)
		}
	}

	if status, reason, _, _ := readyOf(t, ns, "hourly"); status != "True" || reason != v1alpha1.ReasonScheduled {
		t.Errorf("valid policy Ready=%s (%s), want True (Scheduled)", status, reason)
	}
	invalid := []struct{ name, reason, inMessage string }{
		{"stale-max-age", v1alpha1.ReasonInvalidRetention, `spec.retention.maxAge: time: unknown unit " days"`},
		{"bad-timeout", v1alpha1.ReasonInvalidHookTimeout, `spec.hooks.pre[0].timeout: time: unknown unit " seconds"`},
		{"mars", v1alpha1.ReasonInvalidTimeZone, `spec.timeZone: time zone "Mars/Olympus_Mons"`},
	}
	table := policyTable(t, ns)
	for _, iv := range invalid {
		status, reason, message, nextRun := readyOf(t, ns, iv.name)
		if status != "False" || reason != iv.reason || !strings.Contains(message, iv.inMessage) {
			t.Errorf("%s: Ready=%s (%s: %q), want False (%s: …%s…)", iv.name, status, reason, message, iv.reason, iv.inMessage)
		}
		if nextRun != nil {
			t.Errorf("%s: nextRun %v on a policy that does not run", iv.name, nextRun)
		}
		if got := table[iv.name]; got["Ready"] != "False" || got["Reason"] != iv.reason {
			t.Errorf("%s: kubectl get prints Ready %v Reason %v, want False %s", iv.name, got["Ready"], got["Reason"], iv.reason)
		}
		if n := testutil.ToFloat64(r.ctrl.Metrics.PolicyErrors.WithLabelValues(ns, iv.name, iv.reason)); n < 1 {
			t.Errorf("%s: stateguard_snapshotter_policy_errors_total{reason=%q} = %v, want at least 1", iv.name, iv.reason, n)
		}
		pollUntil(t, "a Warning Event on "+iv.name, func() bool {
			return hasEvent(t, ns, iv.name, corev1.EventTypeWarning, iv.reason, iv.inMessage)
		})
	}
	if got := table["hourly"]; got["Ready"] != "True" || got["Reason"] != v1alpha1.ReasonScheduled {
		t.Errorf("hourly: kubectl get prints Ready %v Reason %v, want True Scheduled", got["Ready"], got["Reason"])
	}

	// Fixed, the policy runs again.
	fix := client.RawPatch(types.MergePatchType, []byte(`{"spec":{"retention":{"maxAge":"72h"}}}`))
	if err := kc.Patch(t.Context(), rawPolicy(ns, "stale-max-age", nil), fix); err != nil {
		t.Fatalf("fix the policy: %v", err)
	}
	r.pass()
	if status, reason, _, nextRun := readyOf(t, ns, "stale-max-age"); status != "True" || reason != v1alpha1.ReasonScheduled || nextRun == nil {
		t.Errorf("fixed policy Ready=%s (%s), nextRun %v; want True (Scheduled) and a next run", status, reason, nextRun)
	}
	pollUntil(t, "a Normal Event on the fixed policy", func() bool {
		return hasEvent(t, ns, "stale-max-age", corev1.EventTypeNormal, v1alpha1.ReasonScheduled, "valid again")
	})
}

func hasEvent(t *testing.T, ns, policy, typ, reason, inMessage string) bool {
	t.Helper()
	var list corev1.EventList
	if err := kc.List(t.Context(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, e := range list.Items {
		if e.InvolvedObject.Kind == "SnapshotPolicy" && e.InvolvedObject.Name == policy &&
			e.Type == typ && e.Reason == reason && strings.Contains(e.Message, inMessage) {
			return true
		}
	}
	return false
}
