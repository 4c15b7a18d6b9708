package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/correlator/internal/api"
)

// restoreRequests returns how many restore.requested events the DECISION
// stream holds and the last one.
func restoreRequests(t *testing.T, c *events.Client) (int, events.Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	st, err := c.JetStream().Stream(ctx, events.StreamDecision)
	if err != nil {
		t.Error(err)
		return 0, events.Event{}
	}
	subj := events.SubjectOf(events.TypeRestoreRequested)
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(subj))
	if err != nil {
		t.Error(err)
		return 0, events.Event{}
	}
	n := int(info.State.Subjects[subj])
	if n == 0 {
		return 0, events.Event{}
	}
	m, err := st.GetLastMsgForSubject(ctx, subj)
	if err != nil {
		t.Error(err)
		return 0, events.Event{}
	}
	ev, err := events.DecodeMsg(&nats.Msg{Subject: m.Subject, Data: m.Data, Header: m.Header})
	if err != nil {
		t.Error(err)
	}
	return n, ev
}

// restoreStep is one status the fake executor writes.
type restoreStep struct {
	phase, message string
	// extra are further status fields written with the phase.
	extra map[string]any
}

// actAsRestoreExecutor plays the snapshotter for the next restore request
// (the (after+1)th restore.requested): it creates the Restore the request
// names, as services/snapshotter/internal/restore.ForRequest does, and
// writes steps to its status subresource one after the other, appending
// each phase to status.phases as the executor does. The real executor
// lives in the snapshotter's module and is tested there against the real
// CSI stack (services/snapshotter/internal/restore); this test checks
// that the CLI follows what it writes. It returns the request it saw.
func actAsRestoreExecutor(t *testing.T, c *events.Client, after int, steps []restoreStep) <-chan events.RestoreRequested {
	done := make(chan events.RestoreRequested, 1)
	go func() {
		defer close(done)
		var req events.RestoreRequested
		deadline := time.Now().Add(60 * time.Second)
		for {
			n, ev := restoreRequests(t, c)
			if n > after {
				var err error
				if req, err = events.Decode[events.RestoreRequested](ev); err != nil {
					t.Error(err)
					return
				}
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("no restore.requested after 60s")
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		ri := dyn(t).Resource(gvrRestore).Namespace(req.Namespace)
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "stateguard.io/v1alpha1", "kind": "Restore",
			"metadata": map[string]any{"name": events.RestoreName(req.RequestID), "namespace": req.Namespace},
			"spec": map[string]any{"volumeSnapshot": req.Snapshot, "pvc": req.PVC, "incident": req.IncidentID,
				"requestID": req.RequestID, "actor": req.Actor, "reason": req.Reason},
		}}
		created, err := ri.Create(t.Context(), u, metav1.CreateOptions{})
		if err != nil {
			t.Errorf("create the Restore: %v", err)
			return
		}
		status := map[string]any{}
		var phases []any
		at := time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC)
		for _, s := range steps {
			at = at.Add(7 * time.Second)
			phases = append(phases, map[string]any{"phase": s.phase, "at": at.Format(time.RFC3339), "message": s.message})
			status["phase"], status["message"], status["phases"] = s.phase, s.message, phases
			for k, v := range s.extra {
				status[k] = v
			}
			created.Object["status"] = status
			if created, err = ri.UpdateStatus(t.Context(), created, metav1.UpdateOptions{}); err != nil {
				t.Errorf("status %s: %v", s.phase, err)
				return
			}
			time.Sleep(300 * time.Millisecond) // the CLI sees some phases, not all: status.phases has them
		}
		done <- req
	}()
	return done
}

// ensureNamespace creates ns in the shared control plane unless it exists.
func ensureNamespace(t *testing.T, ns string) {
	t.Helper()
	_, err := kube(t).Client.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// inOrder fails unless out holds each of want once, in order.
func inOrder(t *testing.T, out string, want ...string) {
	t.Helper()
	rest := out
	for _, w := range want {
		if n := strings.Count(out, w); n != 1 {
			t.Errorf("%q appears %d times, want once:\n%s", w, n, out)
		}
		i := strings.Index(rest, w)
		if i < 0 {
			t.Errorf("%q missing or out of order:\n%s", w, out)
			return
		}
		rest = rest[i+len(w):]
	}
}

// TestRestoreCreate: restore create posts the request to the real
// correlator API with the operator token (the restore.requested event it
// publishes carries the incident, the restore point and the reason), prints
// the Restore's name, and with --wait follows the Restore on a real API
// server (admitted by the shipped CRD) through its phases: exit 0 when
// Completed, 1 with the reason when RolledBack.
func TestRestoreCreate(t *testing.T) {
	c, env := caseStudy(t)
	ensureNamespace(t, "shop")
	var incs []api.Incident
	if err := json.Unmarshal([]byte(ctl(t, env, "incident", "get", "--status", "open", "-o", "json").must(t).stdout), &incs); err != nil || len(incs) != 1 {
		t.Fatalf("open incidents: %v %+v", err, incs)
	}
	inc := incs[0]
	point := inc.RestorePoints[0]

	// A read token may not restore; a bad command line is a usage error;
	// neither publishes anything.
	if r := ctl(t, env, "restore", "create", "--incident", inc.ID); r.code != exitDenied || !strings.Contains(r.stderr, "403") {
		t.Errorf("create with a read token: exit %d %q, want %d", r.code, r.stderr, exitDenied)
	}
	op := map[string]string{"STATEGUARD_SERVER": env["STATEGUARD_SERVER"], "STATEGUARD_TOKEN": operatorToken, "KUBECONFIG": kubeconfig(t)}
	for _, args := range [][]string{{}, {"--snapshot", "s2"}, {"--snapshot", "shop/s2", "extra"}} {
		if r := ctl(t, op, append([]string{"restore", "create"}, args...)...); r.code != exitUsage {
			t.Errorf("restore create %v: exit %d %q, want %d", args, r.code, r.stderr, exitUsage)
		}
	}
	if r := ctl(t, op, "restore", "create", "--incident", "inc-000000000000000000000000"); r.code != exitNotFound {
		t.Errorf("an unknown incident: exit %d %q, want %d", r.code, r.stderr, exitNotFound)
	}
	noKube := map[string]string{"STATEGUARD_SERVER": op["STATEGUARD_SERVER"], "STATEGUARD_TOKEN": operatorToken, "KUBECONFIG": "/nonexistent/kubeconfig"}
	if r := ctl(t, noKube, "restore", "create", "--incident", inc.ID, "--wait"); r.code != exitError || !strings.Contains(r.stderr, "--wait follows the Restore through the kubeconfig") {
		t.Errorf("--wait without a cluster: exit %d %q, want 1 before asking", r.code, r.stderr)
	}
	if n, _ := restoreRequests(t, c.client); n != 0 {
		t.Fatalf("refused commands published %d restore.requested", n)
	}

	// The incident's restore point, followed to Completed.
	reason := "restore the data written before v2"
	done := actAsRestoreExecutor(t, c.client, 0, []restoreStep{
		{phase: "Pending", message: "checking the claim, the snapshot and the workloads"},
		{phase: "SafetySnapshot", message: "taking safety snapshot", extra: map[string]any{"pvc": point.PVC, "startTime": "2026-12-07T04:00:07Z"}},
		{phase: "ScalingDown", message: "scaling StatefulSet/db to 0", extra: map[string]any{"safetySnapshot": "restore-x-safety",
			"workloads": []any{map[string]any{"kind": "StatefulSet", "name": "db", "replicas": int64(3)}}}},
		{phase: "Restoring", message: "replacing the claim", extra: map[string]any{"oldPV": "pv-old"}},
		{phase: "ScalingUp", message: "scaling StatefulSet/db back to 3", extra: map[string]any{"newPV": "pv-new"}},
		{phase: "Verifying", message: "waiting for the rollout"},
		{phase: "Completed", message: "restored from " + point.Name, extra: map[string]any{"completionTime": "2026-12-07T04:00:49Z"}},
	})
	r := ctl(t, op, "restore", "create", "--incident", inc.ID, "--reason", reason, "--wait", "--wait-timeout", "2m").must(t)
	req := <-done
	name := events.RestoreName(req.RequestID)
	if req.Namespace != "shop" || req.IncidentID != inc.ID || req.Snapshot != point.Name || req.PVC != point.PVC || req.Actor != "alice" || req.Reason != reason {
		t.Errorf("restore.requested %+v: want incident %s's restore point %s/%s, by alice, with the reason", req, inc.ID, point.PVC, point.Name)
	}
	inOrder(t, r.stdout, "restore shop/"+name+" requested: claim "+point.PVC+" from snapshot "+point.Name+" (incident "+inc.ID+") by alice",
		"Pending", "SafetySnapshot  taking safety snapshot", "ScalingDown", "Restoring", "ScalingUp", "Verifying", "2026-12-07T04:00:49Z  Completed",
		"restore shop/"+name+" Completed: claim "+point.PVC+" restored from snapshot "+point.Name+" (new PV pv-new; old PV pv-old retained; safety snapshot restore-x-safety)")

	// The same request again names the same Restore (and restores once);
	// -o json prints the correlator's answer.
	var acc api.RestoreAccepted
	ctl(t, op, "restore", "create", "--incident", inc.ID, "--reason", reason).must(t).has(t, "restore shop/"+name+" requested",
		"follow it: stateguardctl restore describe shop/"+name)
	if err := json.Unmarshal([]byte(ctl(t, op, "restore", "create", "--incident", inc.ID, "--reason", reason, "-o", "json").must(t).stdout), &acc); err != nil ||
		acc.Restore != name || acc.RequestID != req.RequestID {
		t.Errorf("the same request again: %v %+v, want Restore %s", err, acc, name)
	}
	if n, _ := restoreRequests(t, c.client); n != 1 {
		t.Errorf("%d restore.requested after a repeated request, want 1", n)
	}

	// A snapshot named by the operator, rolled back: exit 1 with the reason.
	done = actAsRestoreExecutor(t, c.client, 1, []restoreStep{
		{phase: "Pending"}, {phase: "SafetySnapshot"}, {phase: "ScalingDown"}, {phase: "Restoring"}, {phase: "ScalingUp"}, {phase: "Verifying"},
		{phase: "RollingBack", message: "the verification Job failed", extra: map[string]any{"failedPhase": "Verifying", "failureReason": "VerificationFailed"}},
		{phase: "RolledBack", message: "the verification Job failed: exit code 3; the claim is bound to its old volume pv-old again"},
	})
	r = ctl(t, op, "restore", "create", "--snapshot", "shop/s1", "--pvc", point.PVC, "--wait", "--wait-timeout", "2m")
	req = <-done
	if r.code != exitError || !strings.Contains(r.stderr, "RolledBack (failed in Verifying: VerificationFailed): the verification Job failed: exit code 3") {
		t.Errorf("a rolled back restore: exit %d\nstdout:\n%s\nstderr:\n%s\nwant 1 with the failure", r.code, r.stdout, r.stderr)
	}
	inOrder(t, r.stdout, "Verifying", "RollingBack", "RolledBack")
	if req.Namespace != "shop" || req.Snapshot != "s1" || req.PVC != point.PVC || req.IncidentID != "" || req.Reason != "restore snapshot shop/s1" {
		t.Errorf("restore.requested %+v: want snapshot shop/s1 of %s with the default reason", req, point.PVC)
	}
}

// restore is a Restore with a status, for the get, describe and logs
// tests.
func restoreObj(name, snapshot, incident string, status map[string]any) map[string]any {
	obj := map[string]any{
		"apiVersion": "stateguard.io/v1alpha1", "kind": "Restore",
		"metadata": map[string]any{"name": name},
		"spec": map[string]any{"volumeSnapshot": snapshot, "incident": incident, "actor": "alice", "reason": "bad migration",
			"verification": map[string]any{"timeout": "5m", "template": map[string]any{"template": map[string]any{}}}},
	}
	if status != nil {
		obj["status"] = status
	}
	return obj
}

func phasesOf(start time.Time, steps ...string) []any {
	var out []any
	for i, p := range steps {
		out = append(out, map[string]any{"phase": p, "at": start.Add(time.Duration(i) * 10 * time.Second).Format(time.RFC3339)})
	}
	return out
}

// TestRestoreGetDescribeLogs on Restores a real API server admitted (the
// statuses written through the status subresource, as the snapshotter
// writes them), with the Events of the Restore, its verification Job and
// pod.
func TestRestoreGetDescribeLogs(t *testing.T) {
	k := kube(t)
	ns := k.Namespace(t, nil)
	env := map[string]string{"KUBECONFIG": kubeconfig(t)}
	t0 := time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC)
	createObject(t, gvrRestore, ns, restoreObj("restore-done", "db-hourly-1", "inc-1", map[string]any{
		"phase": "Completed", "message": "restored from db-hourly-1", "pvc": "data-db-0", "safetySnapshot": "restore-done-safety",
		"oldPV": "pv-old", "newPV": "pv-new", "startTime": t0.Format(time.RFC3339), "completionTime": t0.Add(60 * time.Second).Format(time.RFC3339),
		"workloads": []any{map[string]any{"kind": "StatefulSet", "name": "db", "replicas": int64(3)}},
		"phases":    phasesOf(t0, "Pending", "SafetySnapshot", "ScalingDown", "Restoring", "ScalingUp", "Verifying", "Completed"),
		"conditions": []any{map[string]any{"type": "Succeeded", "status": "True", "reason": "Completed", "message": "the claim holds the snapshot's data",
			"lastTransitionTime": t0.Add(60 * time.Second).Format(time.RFC3339)}},
	}))
	createObject(t, gvrRestore, ns, restoreObj("restore-back", "db-hourly-2", "", map[string]any{
		"phase": "RolledBack", "message": "the verification Job failed: exit code 3", "pvc": "data-db-0", "oldPV": "pv-old", "newPV": "pv-new2",
		"failedPhase": "Verifying", "failureReason": "VerificationFailed",
		"phases": phasesOf(t0, "Pending", "SafetySnapshot", "ScalingDown", "Restoring", "ScalingUp", "Verifying", "RollingBack", "RolledBack"),
		"conditions": []any{map[string]any{"type": "Succeeded", "status": "False", "reason": "VerificationFailed", "message": "the verification Job failed",
			"lastTransitionTime": t0.Format(time.RFC3339)}},
	}))
	createObject(t, gvrRestore, ns, restoreObj("restore-new", "db-hourly-3", "", nil))

	r := ctl(t, env, "restore", "get", ns).must(t)
	for name, want := range map[string]string{
		"restore-done": "data-db-0 db-hourly-1 Completed",
		"restore-back": "data-db-0 db-hourly-2 RolledBack",
		"restore-new":  "- db-hourly-3 -",
	} {
		if got := row(t, r.stdout, name); strings.Join(got[2:5], " ") != want || len(got) != 6 {
			t.Errorf("%s (pvc snapshot phase age): %v, want %s", name, got, want)
		}
	}
	if !strings.HasPrefix(r.stdout, "NAMESPACE  NAME") || !strings.Contains(r.stdout, "PVC") || !strings.Contains(r.stdout, "AGE") {
		t.Errorf("header:\n%s", r.stdout)
	}
	ctl(t, env, "restore", "get", ns, "-o", "wide").must(t).has(t, "inc-1", "restore-done-safety", "pv-new2", "the verification Job failed: exit code 3")
	var list struct {
		Kind  string
		Items []unstructured.Unstructured
	}
	if err := json.Unmarshal([]byte(ctl(t, env, "restore", "get", ns, "-o", "json").must(t).stdout), &list); err != nil || list.Kind != "List" || len(list.Items) != 3 {
		t.Errorf("-o json: %v %+v", err, list)
	}
	if r := ctl(t, env, "restore", "get", ns+"/nope"); r.code != exitNotFound {
		t.Errorf("an unknown restore: exit %d, want %d", r.code, exitNotFound)
	}

	r = ctl(t, env, "restore", "describe", ns+"/restore-done").must(t)
	r.has(t, "restore "+ns+"/restore-done", "phase:            Completed", "snapshot:         db-hourly-1", "pvc:              data-db-0",
		"incident:         inc-1", "requested by:     alice", "verification:     a Job, timeout 5m",
		"completed:        2026-12-07T04:01:00Z (took 1m0s)",
		"safety snapshot:  restore-done-safety", "old PV:           pv-old", "new PV:           pv-new",
		"StatefulSet/db  replicas 3", "Succeeded=True  Completed")
	inOrder(t, r.stdout, "Pending         2026-12-07T04:00:00Z (10s)", "SafetySnapshot  2026-12-07T04:00:10Z (10s)", "ScalingDown", "Restoring",
		"ScalingUp", "Verifying", "Completed       2026-12-07T04:01:00Z")
	if strings.Contains(r.stdout, "failure:") {
		t.Errorf("a completed restore shows a failure:\n%s", r.stdout)
	}
	ctl(t, env, "restore", "describe", ns+"/restore-back").must(t).has(t, "phase:            RolledBack",
		"failure:          RolledBack (failed in Verifying: VerificationFailed): the verification Job failed: exit code 3",
		"bound to its old volume pv-old again", "Succeeded=False  VerificationFailed")
	ctl(t, env, "restore", "describe", ns+"/restore-new").must(t).has(t, "phase:            -", "none yet: the snapshotter has not started this restore",
		"pvc:              (the snapshot's source claim)")
	var obj map[string]any
	if err := yaml.Unmarshal([]byte(ctl(t, env, "restore", "describe", ns+"/restore-done", "-o", "yaml").must(t).stdout), &obj); err != nil || obj["kind"] != "Restore" {
		t.Errorf("describe -o yaml: %v %v", err, obj["kind"])
	}
	if r := ctl(t, env, "restore", "describe", ns+"/nope"); r.code != exitNotFound {
		t.Errorf("describe an unknown restore: exit %d, want %d", r.code, exitNotFound)
	}

	// Events of the Restore, of its verification Job and pod; not those
	// of another pod.
	lbl := map[string]string{labelRestore: "restore-back"}
	never := corev1.RestartPolicyNever
	pod := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: lbl}, Spec: corev1.PodSpec{RestartPolicy: never,
		Containers: []corev1.Container{{Name: "verify", Image: "busybox"}}}}
	if _, err := k.Client.BatchV1().Jobs(ns).Create(t.Context(), &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "restore-back-verify", Labels: lbl},
		Spec: batchv1.JobSpec{Template: pod}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for name, l := range map[string]map[string]string{"restore-back-verify-x1": lbl, "web-1": {"app": "web"}} {
		if _, err := k.Client.CoreV1().Pods(ns).Create(t.Context(), &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l}, Spec: pod.Spec},
			metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for i, e := range []struct{ kind, name, reason, msg string }{
		{"Pod", "restore-back-verify-x1", "BackOff", "verify exited 3"},
		{"Restore", "restore-back", "RolledBack", "the claim is bound to pv-old again"},
		{"Job", "restore-back-verify", "SuccessfulCreate", "Created pod: restore-back-verify-x1"},
		{"Restore", "restore-back", "SafetySnapshot", "taking restore-back-safety"},
		{"Pod", "web-1", "Pulled", "not this restore's"},
	} {
		at := metav1.NewTime(t0.Add(time.Duration([]int{30, 90, 20, 5, 40}[i]) * time.Second))
		ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: e.name + "." + e.reason}, Type: corev1.EventTypeNormal, Reason: e.reason, Message: e.msg,
			InvolvedObject: corev1.ObjectReference{Kind: e.kind, Name: e.name, Namespace: ns}, FirstTimestamp: at, LastTimestamp: at, Count: 1,
			Source: corev1.EventSource{Component: "test"}}
		if _, err := k.Client.CoreV1().Events(ns).Create(t.Context(), ev, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	r = ctl(t, env, "restore", "logs", ns+"/restore-back").must(t)
	inOrder(t, r.stdout, "TIME", "taking restore-back-safety", "Job/restore-back-verify", "Created pod: restore-back-verify-x1",
		"Pod/restore-back-verify-x1  BackOff", "verify exited 3", "the claim is bound to pv-old again")
	if strings.Contains(r.stdout, "web-1") {
		t.Errorf("logs show another pod's Events:\n%s", r.stdout)
	}
	ctl(t, env, "restore", "logs", ns+"/restore-new").must(t).has(t, "no Events for restore "+ns+"/restore-new")
	if r := ctl(t, env, "restore", "logs", ns+"/nope"); r.code != exitNotFound {
		t.Errorf("logs of an unknown restore: exit %d, want %d", r.code, exitNotFound)
	}
}
