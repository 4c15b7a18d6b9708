package e2e

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/harness/demo"
	"github.com/stateguard/stateguard/pkg/harness/kubetest"
	"github.com/stateguard/stateguard/pkg/harness/manifests"
	"github.com/stateguard/stateguard/pkg/harness/otlptest"
	"github.com/stateguard/stateguard/pkg/harness/stack"
)

// TestCaseStudyEndToEnd: CI posts SARIF with a hard-coded credential for
// the version that runs → the known-good VolumeSnapshot is pinned, a restore
// recommendation is on the stream and in the correlator's API, the app's TLS
// Secret holds a new certificate and its Deployment was rolled — and the
// flow from the upload on is one trace.
func TestCaseStudyEndToEnd(t *testing.T) {
	root, err := kubetest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "bin", "gosec")); err != nil {
		t.Fatalf("bin/gosec missing: run `make tools` (%v)", err)
	}
	rec, err := otlptest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Minute)
	defer cancel()
	log := slog.New(slog.NewTextHandler(testWriter{t}, nil))
	s, err := stack.Start(ctx, stack.Config{
		Root:       root,
		Dir:        dir,
		BuildFlags: []string{"-race"},
		Env: []string{
			"LOG_LEVEL=info",
			"OTEL_EXPORTER_OTLP_ENDPOINT=" + rec.Endpoint,
			"OTEL_BSP_SCHEDULE_DELAY=100",
		},
		ServiceEnv: map[string][]string{
			"correlator": {"CORRELATOR_CONFIG=" + filepath.Join(root, "services", "correlator", "config.example.yaml")},
		},
		Log: log,
		// Every service serves HTTPS, as in production (#19).
		TLS: true,
	})
	if err != nil {
		t.Fatalf("start the stack: %v", err)
	}
	api := apiClient{s.HTTPClient()}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		sctx, scancel := context.WithTimeout(context.Background(), time.Minute)
		defer scancel()
		if err := s.Stop(sctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	}
	defer stop()
	defer func() {
		if t.Failed() {
			for _, name := range stack.Services {
				b, _ := os.ReadFile(s.LogFile(name))
				t.Logf("---- %s log (tail) ----\n%s", name, tail(string(b), 40))
			}
		}
	}()

	scene := demo.Default()
	scene.Schedule = "@every 10s"
	story, err := demo.Run(ctx, demo.Env{
		RestConfig: s.RestConfig, NATSURL: s.NATSURL, IngestURL: s.URL("sastingest"), HTTPClient: s.HTTPClient(),
		Token: s.Token, Root: root, Dir: dir, Scene: scene, Timeout: 2 * time.Minute,
		CorrelatorURL: s.URL("correlator"), OperatorToken: s.OperatorToken, ClaimDir: s.Cluster.ClaimDir,
	}, func(line string) { t.Log(line) })
	if err != nil {
		t.Fatalf("case study: %v", err)
	}

	// The known-good snapshot — the one taken while 1.0.0 ran — is pinned.
	sc, err := snapclient.NewForConfig(s.RestConfig)
	if err != nil {
		t.Fatal(err)
	}
	var pinned []string
	eventually(t, "a pinned VolumeSnapshot", func() bool {
		list, err := sc.SnapshotV1().VolumeSnapshots(scene.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "stateguard.io/pinned=true"})
		if err != nil {
			return false
		}
		pinned = nil
		for _, vs := range list.Items {
			pinned = append(pinned, vs.Name)
		}
		return len(pinned) > 0
	})

	// A restore recommendation is on the DECISION stream …
	client, err := events.Connect(ctx, events.ConnConfig{URL: s.NATSURL})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close(context.Background())
	cons, err := client.JetStream().OrderedConsumer(ctx, events.StreamDecision, jetstream.OrderedConsumerConfig{FilterSubjects: []string{events.SubjectOf(events.TypeRestoreRecommended)}})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
	if err != nil {
		t.Fatalf("no restore recommendation on the stream: %v", err)
	}
	ev, err := events.DecodeMsg(&nats.Msg{Subject: msg.Subject(), Header: msg.Headers(), Data: msg.Data()})
	if err != nil {
		t.Fatal(err)
	}
	rr, err := events.Decode[events.RestoreRecommended](ev)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(pinned, rr.VolumeSnapshot) {
		t.Errorf("recommended snapshot %s is not among the pinned %v", rr.VolumeSnapshot, pinned)
	}
	if rr.PVC != scene.PVC || !strings.Contains(rr.Manifest, rr.VolumeSnapshot) || len(rr.Reasons) == 0 {
		t.Errorf("recommendation incomplete: %+v", rr)
	}
	// … and in the correlator's API.
	body := api.get(t, ctx, s.URL("correlator")+"/v1/incidents", s.Token)
	if !strings.Contains(body, rr.Incident) || !strings.Contains(body, rr.VolumeSnapshot) {
		t.Errorf("GET /v1/incidents does not show incident %s recommending %s:\n%s", rr.Incident, rr.VolumeSnapshot, body)
	}
	if code := api.status(t, ctx, s.URL("correlator")+"/v1/incidents", "wrong-token"); code != http.StatusUnauthorized {
		t.Errorf("a wrong token got %d, want 401", code)
	}

	// The TLS Secret holds the new certificate that the rotation reported,
	// and the Deployment was rolled.
	rot := lastEvent[events.CertificateRotated](t, ctx, client, events.StreamCertificate, events.TypeCertificateRotated)
	if rot.Namespace != scene.Namespace || rot.Secret != scene.TLSSecret || rot.NewSerial == rot.OldSerial || rot.Method != "in-cluster-ca" {
		t.Errorf("rotation event %+v", rot)
	}
	sec, err := s.Kube().CoreV1().Secrets(scene.Namespace).Get(ctx, scene.TLSSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := serialOf(t, sec.Data["tls.crt"]); got != rot.NewSerial {
		t.Errorf("the Secret holds serial %s, the rotation reported %s (old %s)", got, rot.NewSerial, rot.OldSerial)
	}
	dep, err := s.Kube().AppsV1().Deployments(scene.Namespace).Get(ctx, scene.App, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if dep.Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"] == "" {
		t.Errorf("Deployment %s was not rolled: template annotations %v", scene.App, dep.Spec.Template.Annotations)
	}
	// The cluster's controllers carried the rollout out: the app's pods run
	// from the ReplicaSet of the rolled template (after 1.0.0's and 1.1.0's;
	// the fix 1.2.0 was deployed on the rolled template, keeping its
	// annotation: its ReplicaSet is the current one), and no pod of an older
	// ReplicaSet is left.
	restartedAt := dep.Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"]
	var rolledRS string
	eventually(t, "the app's pods all from the rolled ReplicaSet", func() bool {
		sel := metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=" + scene.App}
		rss, err := s.Kube().AppsV1().ReplicaSets(scene.Namespace).List(ctx, sel)
		if err != nil || len(rss.Items) < 3 {
			return false
		}
		for _, rs := range rss.Items {
			if rs.Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"] == restartedAt && metav1.IsControlledBy(&rs, dep) &&
				rs.Spec.Template.Spec.Containers[0].Image == dep.Spec.Template.Spec.Containers[0].Image {
				rolledRS = rs.Name
			}
		}
		pods, err := s.Kube().CoreV1().Pods(scene.Namespace).List(ctx, sel)
		if err != nil || len(pods.Items) == 0 || rolledRS == "" {
			return false
		}
		for _, p := range pods.Items {
			owner := metav1.GetControllerOf(&p)
			if owner == nil || owner.Name != rolledRS || p.Status.Phase != corev1.PodRunning {
				return false
			}
		}
		return true
	})

	// The operator restored the incident's restore point through the
	// correlator's API: the Restore Completed, the claim holds exactly the
	// data 1.0.0 wrote before the known-good snapshot (not 1.1.0's
	// change), and the incident closed because of the restore.
	checkRestored(t, ctx, s, scene, rr, story)
	// A read token may not ask for a restore, nor resolve; the closed
	// incident is not resolved again.
	if code := api.post(t, ctx, s.URL("correlator")+"/v1/restores", s.Token, `{"incident_id":"`+rr.Incident+`","reason":"e2e"}`); code != http.StatusForbidden {
		t.Errorf("a read token asking for a restore got %d, want 403", code)
	}
	resolve := s.URL("correlator") + "/v1/incidents/" + rr.Incident + "/resolve"
	if code := api.post(t, ctx, resolve, s.Token, `{"reason":"e2e: restored by hand"}`); code != http.StatusForbidden {
		t.Errorf("a read token resolving got %d, want 403", code)
	}
	if code := api.post(t, ctx, resolve, s.OperatorToken, `{"reason":"e2e: restored by hand"}`); code != http.StatusConflict {
		t.Errorf("the operator token resolving the closed incident got %d, want 409", code)
	}

	// An upload sent as GitHub's own uploaders send it — no stateguard
	// query parameter — is joined to the app that runs its commit.
	checkGitHubUploadJoined(t, ctx, s, api, root, scene)

	// Every metric the dashboard and the alert rules read is on a running
	// service's /metrics.
	checkMonitoredMetrics(t, ctx, s, api)

	// Dogfood: certwatcher rotates the ingest's own serving certificate and
	// an upload right after goes to the new one.
	checkIngestCertificateRotation(t, ctx, s, api, client)

	// The review-cycle report of the story, checked against the streams;
	// the audit trail verified, then one decision altered and named.
	checkReviewReport(t, ctx, s, api, client, scene, rr.Incident)
	checkAuditVerify(t, ctx, s, dir, client, rr.Incident)

	// One trace: ingest → publish → correlate → rotate (and the restore
	// recommendation beside it). Stop the services first so every span is
	// flushed.
	stop()
	var rotation otlptest.Span
	for _, sp := range rec.Spans() {
		// The rotation the upload caused (the dogfood's, asked by an
		// operator, has its own trace).
		if sp.Service == "certwatcher" && sp.Name == "process "+events.SubjectOf(events.TypeCertificateRotationRequest) &&
			strings.Contains(sp.Attrs["cloudevents.event_id"], "rotate-exposure-") {
			rotation = sp
		}
	}
	if rotation.SpanID == "" {
		t.Fatalf("no certwatcher span for the rotation request; spans:\n%s", otlptest.Tree(rec.Spans()))
	}
	trace := rec.Trace(rotation.TraceID)
	path := otlptest.Path(trace, rotation)
	want := []string{
		"sastingest:send " + events.SubjectOf(events.TypeSARIFUploaded),
		"correlator:process " + events.SubjectOf(events.TypeSARIFUploaded),
		"correlator:send " + events.SubjectOf(events.TypeCertificateRotationRequest),
		"certwatcher:process " + events.SubjectOf(events.TypeCertificateRotationRequest),
	}
	if !subsequence(path, want) || !strings.HasPrefix(path[0], "sastingest:") {
		t.Errorf("rotation path %v does not start at ingest and pass %v; trace:\n%s", path, want, otlptest.Tree(trace))
	}
	t.Logf("the trace of the upload:\n%s", otlptest.Tree(trace))
	names := map[string]bool{}
	for _, sp := range trace {
		names[sp.Service+":"+sp.Name] = true
	}
	for _, n := range []string{
		"correlator:send " + events.SubjectOf(events.TypeRestoreRecommended),
		"certwatcher:send " + events.SubjectOf(events.TypeCertificateRotated),
	} {
		if !names[n] {
			t.Errorf("trace lacks %s:\n%s", n, otlptest.Tree(trace))
		}
	}
}

// checkGitHubUploadJoined posts a scan of the running version (the fix
// 1.2.0) as codeql github upload-results and the upload-sarif action send
// it: POST /repos/{owner}/{repo}/code-scanning/sarifs with GitHub's
// documented body (commit_sha, ref, sarif gzip+base64, checkout_uri,
// started_at, tool_name) and no query parameter. sastingest's status says
// it named no application; the correlator joins it by the repository and
// commit the app's pods carry (stateguard.io/repository,
// stateguard.io/commit), and the app's view lists it.
func checkGitHubUploadJoined(t *testing.T, ctx context.Context, s *stack.Stack, api apiClient, root string, scene demo.Scene) {
	t.Helper()
	sarif, err := demo.Scan(ctx, filepath.Join(root, "bin", "gosec"), filepath.Join(root, "pkg", "harness", "demo", "testdata", "app-v3"))
	if err != nil {
		t.Fatal(err)
	}
	statusURL, err := demo.PostGitHub(ctx, api.hc, s.URL("sastingest"), s.Token, demo.Upload{
		Repository: scene.Repository, CommitSHA: demo.V3.Commit, Ref: "refs/heads/main", CheckoutURI: "file:///home/runner/work/shop-db/shop-db",
		StartedAt: time.Now().UTC().Format(time.RFC3339), ToolName: "CodeQL",
	}, sarif)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(statusURL, "?") {
		t.Fatalf("status URL %s: the upload carried query parameters", statusURL)
	}
	var gh struct {
		Status   string `json:"processing_status"`
		UploadID string `json:"upload_id"`
	}
	eventually(t, "the GitHub-style upload processed", func() bool {
		return json.Unmarshal([]byte(api.get(t, ctx, statusURL, s.Token)), &gh) == nil && gh.Status == "complete" && gh.UploadID != ""
	})
	var st struct {
		Join struct{ State, Reason string } `json:"join"`
	}
	if err := json.Unmarshal([]byte(api.get(t, ctx, s.URL("sastingest")+"/v1/sarif/"+gh.UploadID, s.Token)), &st); err != nil ||
		st.Join.State != "not joined" || !strings.Contains(st.Join.Reason, scene.Repository) {
		t.Errorf("sastingest's status of %s: join %+v (%v), want not joined by the uploader, to be joined by repository", gh.UploadID, st.Join, err)
	}
	var join struct {
		State    string                                    `json:"state"`
		Reason   string                                    `json:"reason"`
		JoinedTo []struct{ Namespace, App, Source string } `json:"joined_to"`
	}
	eventually(t, "the correlator's join of the upload", func() bool {
		return api.status(t, ctx, s.URL("correlator")+"/v1/uploads/"+gh.UploadID, s.Token) == http.StatusOK &&
			json.Unmarshal([]byte(api.get(t, ctx, s.URL("correlator")+"/v1/uploads/"+gh.UploadID, s.Token)), &join) == nil
	})
	if join.State != "joined" || len(join.JoinedTo) != 1 || join.JoinedTo[0].Namespace != scene.Namespace || join.JoinedTo[0].App != scene.App {
		t.Fatalf("upload %s: %+v, want joined to %s/%s", gh.UploadID, join, scene.Namespace, scene.App)
	}
	// The app's view lists the upload on the running version's commit.
	eventually(t, "the app's view with the joined upload", func() bool {
		body := api.get(t, ctx, s.URL("correlator")+"/v1/apps/"+scene.Namespace+"/"+scene.App, s.Token)
		return strings.Contains(body, gh.UploadID+"@"+scene.App) && strings.Contains(body, "commit:"+demo.V3.Commit)
	})
	t.Logf("the GitHub-style upload %s was joined to %s/%s by %s", gh.UploadID, scene.Namespace, scene.App, join.JoinedTo[0].Source)
}

// checkRestored checks the story's restore: the Restore in the cluster
// Completed after its phases, for the recommended snapshot, by the stack's
// operator; the data checksums; the incident.closed event naming the
// restore.
func checkRestored(t *testing.T, ctx context.Context, s *stack.Stack, scene demo.Scene, rr events.RestoreRecommended, story demo.Result) {
	t.Helper()
	if story.Incident != rr.Incident || story.Snapshot != rr.VolumeSnapshot {
		t.Errorf("the story restored incident %s from %s, the recommendation is incident %s from %s", story.Incident, story.Snapshot, rr.Incident, rr.VolumeSnapshot)
	}
	dyn, err := dynamic.NewForConfig(s.RestConfig)
	if err != nil {
		t.Fatal(err)
	}
	u, err := dyn.Resource(demo.RestoreGVR).Namespace(scene.Namespace).Get(ctx, story.Restore, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the story's Restore: %v", err)
	}
	phase, _, _ := unstructured.NestedString(u.Object, "status", "phase")
	snap, _, _ := unstructured.NestedString(u.Object, "spec", "volumeSnapshot")
	actor, _, _ := unstructured.NestedString(u.Object, "spec", "actor")
	if phase != "Completed" || snap != rr.VolumeSnapshot || actor != "dev-operator" {
		t.Errorf("Restore %s: phase %q, snapshot %q, actor %q; want Completed from %s by dev-operator", story.Restore, phase, snap, actor, rr.VolumeSnapshot)
	}
	for _, p := range []string{"SafetySnapshot", "ScalingDown", "Restoring", "ScalingUp", "Completed"} {
		if !slices.Contains(story.RestorePhases, p) {
			t.Errorf("Restore %s went through %v, not %s", story.Restore, story.RestorePhases, p)
		}
	}
	if story.KnownGood == "" || story.Changed == story.KnownGood {
		t.Errorf("1.1.0 did not change the data: known-good %q, changed %q", story.KnownGood, story.Changed)
	}
	if story.Restored != story.KnownGood {
		t.Errorf("after the restore the data is %s, want the known-good %s (changed: %s)", story.Restored, story.KnownGood, story.Changed)
	}
	// Read again here, not only as the story printed it.
	dir, err := s.Cluster.ClaimDir(ctx, scene.Namespace, scene.PVC)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, demo.DataFile))
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != story.KnownGood {
		t.Errorf("%s in the claim's volume is %x, want the known-good %s", demo.DataFile, sum, story.KnownGood)
	}
	client, err := events.Connect(ctx, events.ConnConfig{URL: s.NATSURL})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close(context.Background())
	closed := lastEvent[events.IncidentClosed](t, ctx, client, events.StreamDecision, events.TypeIncidentClosed)
	if closed.Incident != rr.Incident || !strings.Contains(closed.Reason, "restored from snapshot "+rr.VolumeSnapshot) {
		t.Errorf("incident.closed %+v, want incident %s closed by the restore from %s", closed, rr.Incident, rr.VolumeSnapshot)
	}
}

// lastEvent reads the newest event of a type from a stream.
func lastEvent[T any](t *testing.T, ctx context.Context, c *events.Client, stream, typ string) T {
	t.Helper()
	st, err := c.JetStream().Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := st.GetLastMsgForSubject(ctx, events.SubjectOf(typ))
	if err != nil {
		t.Fatalf("no %s on %s: %v", typ, stream, err)
	}
	ev, err := events.DecodeMsg(&nats.Msg{Subject: raw.Subject, Header: raw.Header, Data: raw.Data})
	if err != nil {
		t.Fatal(err)
	}
	v, err := events.Decode[T](ev)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func serialOf(t *testing.T, pemBytes []byte) string {
	t.Helper()
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		t.Fatal("tls.crt is not PEM")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", c.SerialNumber)
}

func subsequence(have, want []string) bool {
	i := 0
	for _, h := range have {
		if i < len(want) && h == want[i] {
			i++
		}
	}
	return i == len(want)
}

// apiClient calls the stack's services (over HTTPS, trusting its CA).
type apiClient struct{ hc *http.Client }

func (a apiClient) get(t *testing.T, ctx context.Context, url, token string) string {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := a.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return string(b)
}

func (a apiClient) post(t *testing.T, ctx context.Context, url, token, body string) int {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		t.Logf("POST %s: %d %s", url, resp.StatusCode, b)
	}
	return resp.StatusCode
}

func (a apiClient) status(t *testing.T, ctx context.Context, url, token string) int {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := a.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// onlyAfterAnError are metrics whose series appear only once the error
// they count happened (their reason label is not known before), so the
// case study does not show them.
var onlyAfterAnError = map[string]bool{"stateguard_snapshotter_policy_errors_total": true}

// checkMonitoredMetrics scrapes every service's /metrics and checks that
// each metric the dashboard and the alert rules read is exported.
func checkMonitoredMetrics(t *testing.T, ctx context.Context, s *stack.Stack, api apiClient) {
	t.Helper()
	dir, err := manifests.OverlayDir("prod")
	if err != nil {
		t.Fatal(err)
	}
	objs, err := manifests.Build(dir)
	if err != nil {
		t.Fatal(err)
	}
	rules := manifests.OfKind(objs, "PrometheusRule")
	if len(rules) != 1 {
		t.Fatalf("%d PrometheusRules rendered, want 1", len(rules))
	}
	rf, err := manifests.RuleFile(rules[0])
	if err != nil {
		t.Fatal(err)
	}
	want, err := manifests.MonitoredMetrics(rf)
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]string{}
	for _, name := range stack.Services {
		body := api.get(t, ctx, s.URL(name)+"/metrics", "")
		for line := range strings.Lines(body) {
			if strings.HasPrefix(line, "#") {
				continue
			}
			if i := strings.IndexAny(line, "{ "); i > 0 {
				exported[line[:i]] = name
			}
		}
	}
	for _, m := range want {
		if _, ok := exported[m]; !ok && !onlyAfterAnError[m] {
			t.Errorf("%s is read by the dashboard or the alert rules but no service exports it", m)
		}
	}
	t.Logf("%d metrics read by the dashboard and the rules, all exported", len(want))
}
