package engine

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/harness/natstest"
	"github.com/stateguard/stateguard/services/correlator/internal/model"
	scenario "github.com/stateguard/stateguard/services/correlator/internal/scenariotest"
)

const (
	joinUploadID = "0123456789abcdef0123456789abcdef01234567"
	joinCommit   = "4b6472266afd7b471e86085a6659e8c7f2b119da"
)

// githubUpload is the sarif.uploaded event sastingest publishes for an
// upload sent as codeql github upload-results and the upload-sarif action
// send it: a repository, a commit, a ref and a tool name; no namespace,
// app, version or image.
func githubUpload(repo, category string) events.Event {
	p := events.SARIFUploaded{UploadID: joinUploadID, Repository: repo, CommitSHA: joinCommit, Ref: "refs/heads/main",
		Category: category, Tools: []events.Tool{{Name: "CodeQL"}}, ResultsTotal: 1, BySeverity: events.SeverityCounts{Critical: 1},
		Findings: []events.Finding{scenario.Critical}, ReceivedAt: scenario.T0.Add(30 * time.Minute)}
	return events.MustNewEvent(events.TypeSARIFUploaded, scenario.Source, "sarif-"+joinUploadID, p)
}

// annotated are the join annotations of the shop's db pods: the repository
// and the commit their image was built from.
func annotated(extra ...string) map[string]string {
	a := map[string]string{events.AnnotationRepository: "acme/shop", events.AnnotationCommit: joinCommit}
	for i := 0; i+1 < len(extra); i += 2 {
		a[extra[i]] = extra[i+1]
	}
	return a
}

// runningDB is the observation of the db pod and a snapshot it wrote to,
// both carrying the pod's join annotations.
func runningDB(ann map[string]string) []events.Event {
	c := []events.Container{{Name: "db", Image: "registry.example/db:1.0.0", Digest: scenario.Digest("1.0.0")}}
	owner := &events.ObjectRef{Kind: "StatefulSet", Namespace: "shop", Name: "db"}
	obs := events.WorkloadObserved{Namespace: "shop", PVC: "data", ObservedAt: scenario.T0, Pods: []events.ObservedPod{
		{Pod: "db-0", Owner: owner, App: "db", Version: "1.0.0", Containers: c, Annotations: ann}}}
	snap := events.SnapshotCompleted{Namespace: "shop", PVC: "data", VolumeSnapshot: "s1", CreationTime: scenario.T0.Add(time.Hour),
		Workloads: []events.VolumeWorkload{{Pod: "db-0", Owner: owner, App: "db", Version: "1.0.0", Containers: c, Annotations: ann}}}
	return []events.Event{
		events.MustNewEvent(events.TypeWorkloadObserved, scenario.Source, events.ObservationID(obs), obs),
		events.MustNewEvent(events.TypeSnapshotCompleted, scenario.Source, "snapshot-shop-s1", snap),
	}
}

func joinRecord(t *testing.T, e *Engine) model.UploadJoin {
	t.Helper()
	rec, found, err := e.UploadJoin(t.Context(), joinUploadID)
	if err != nil || !found {
		t.Fatalf("join record: found %t, %v", found, err)
	}
	return rec
}

// An upload sent the way GitHub's uploaders send it names no application.
// It is kept as not joined (not dead-lettered), joined once a workload
// names its repository, and its commit joins the version whose pods carry
// that commit: the snapshot they wrote to is tainted and an incident opens
// (no clean snapshot: nothing to pin or restore).
// The outcome is the same in either order and with the upload redelivered.
func TestUploadWithoutAppJoinsTheWorkloadThatNamesItsRepository(t *testing.T) {
	type outcome struct {
		Decisions []string
		State     string
		Targets   []model.RepoTarget
	}
	run := func(t *testing.T, uploadFirst bool) outcome {
		srv := natstest.Run(t)
		c := natstest.Client(t, srv)
		e := startEngine(t, c, &recorder{})
		up := githubUpload("acme/shop", "CodeQL")
		if uploadFirst {
			publish(t, c, up)
			drain(t, c)
			rec := joinRecord(t, e)
			if rec.State != model.JoinNotJoined || !strings.Contains(rec.Reason, "no application runs repository acme/shop") {
				t.Errorf("before any workload: %q %q, want not joined with the reason", rec.State, rec.Reason)
			}
			if got := briefs(t, stored(t, c, decisionTypes...)); len(got) != 0 {
				t.Errorf("decisions before the join: %v", got)
			}
			publish(t, c, runningDB(annotated())...)
		} else {
			publish(t, c, runningDB(annotated())...)
			drain(t, c)
			publish(t, c, up)
		}
		drain(t, c)
		rec := joinRecord(t, e)
		got := outcome{Decisions: briefs(t, stored(t, c, decisionTypes...)), State: rec.State, Targets: rec.Targets}
		// A redelivery of the upload changes nothing.
		if err := e.Handle(t.Context(), up); err != nil {
			t.Fatalf("redelivered upload: %v", err)
		}
		drain(t, c)
		rec = joinRecord(t, e)
		if diff := cmp.Diff(got, outcome{Decisions: briefs(t, stored(t, c, decisionTypes...)), State: rec.State, Targets: rec.Targets}); diff != "" {
			t.Errorf("a redelivered upload changed the outcome (-before +after):\n%s", diff)
		}
		if n := deadLetters(t, c); n != 0 {
			t.Errorf("%d dead letters, want none", n)
		}
		st, ok, err := e.State(t.Context(), "shop")
		if err != nil || !ok {
			t.Fatalf("state of shop: %t %v", ok, err)
		}
		u := st.Uploads[joinUploadID+"@db"]
		if u == nil || u.App != "db" || !strings.Contains(strings.Join(u.Keys, " "), "commit:"+joinCommit) {
			t.Errorf("the shop's uploads %v: want the upload joined to db with its commit", st.Uploads)
		}
		return got
	}
	first := run(t, true)
	want := outcome{Decisions: []string{"incident.opened db"}, State: model.JoinJoined,
		Targets: []model.RepoTarget{{Namespace: "shop", App: "db", Source: model.SourceAnnotation}}}
	if diff := cmp.Diff(want, first); diff != "" {
		t.Errorf("upload first (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(first, run(t, false)); diff != "" {
		t.Errorf("workload first differs from upload first (-upload first +workload first):\n%s", diff)
	}
}

func deadLetters(t *testing.T, c *events.Client) uint64 {
	t.Helper()
	dl, err := c.JetStream().Stream(t.Context(), events.StreamDeadLetter)
	if err != nil {
		t.Fatal(err)
	}
	info, err := dl.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// The other ways a repository names its application: the rules file's
// repositories (no workload needed), the OCI image source, and a SARIF
// category that limits a workload to uploads of that category.
func TestUploadJoinSources(t *testing.T) {
	srv := natstest.Run(t)
	c := natstest.Client(t, srv)
	rules := model.DefaultRules()
	rules.Repositories = map[string][]model.RepoTarget{"acme/api": {{Namespace: "shop", App: "api", Source: model.SourceRules}}}
	e := startEngineWith(t, Options{Client: c, Rules: rules, Workers: 2})

	t.Run("the rules file's repositories join without a workload", func(t *testing.T) {
		if err := e.Handle(t.Context(), githubUpload("acme/api", "CodeQL")); err != nil {
			t.Fatal(err)
		}
		rec := joinRecord(t, e)
		if diff := cmp.Diff(rules.Repositories["acme/api"], rec.Targets); diff != "" || rec.State != model.JoinJoined {
			t.Errorf("%s, targets (-want +got):\n%s", rec.State, diff)
		}
	})
	t.Run("a workload of another SARIF category does not take the upload", func(t *testing.T) {
		up := events.MustNewEvent(events.TypeSARIFUploaded, scenario.Source, "sarif-other", events.SARIFUploaded{
			UploadID: strings.Repeat("ab", 20), Repository: "https://github.com/acme/shop.git", CommitSHA: joinCommit, Category: "CodeQL",
			ReceivedAt: scenario.T0})
		for _, ev := range append(runningDB(annotated(events.AnnotationSARIFCategory, "gosec")), up) {
			if err := e.Handle(t.Context(), ev); err != nil {
				t.Fatal(err)
			}
		}
		rec, _, err := e.UploadJoin(t.Context(), strings.Repeat("ab", 20))
		if err != nil || rec.State != model.JoinNotJoined || !strings.Contains(rec.Reason, `other SARIF categories than "CodeQL"`) {
			t.Errorf("%v: %q %q, want not joined for the category", err, rec.State, rec.Reason)
		}
	})
	t.Run("the OCI image source names the repository", func(t *testing.T) {
		ann := map[string]string{events.AnnotationImageSource: "https://github.com/Acme/Web", events.AnnotationImageRevision: joinCommit}
		obs := events.WorkloadObserved{Namespace: "web", PVC: "cache", ObservedAt: scenario.T0, Pods: []events.ObservedPod{
			{Pod: "web-0", App: "web", Containers: []events.Container{{Name: "web", Digest: scenario.Digest("w1")}}, Annotations: ann}}}
		up := events.MustNewEvent(events.TypeSARIFUploaded, scenario.Source, "sarif-web", events.SARIFUploaded{
			UploadID: strings.Repeat("cd", 20), Repository: "acme/web", CommitSHA: joinCommit, Category: "CodeQL", ReceivedAt: scenario.T0})
		for _, ev := range []events.Event{up, events.MustNewEvent(events.TypeWorkloadObserved, scenario.Source, events.ObservationID(obs), obs)} {
			if err := e.Handle(t.Context(), ev); err != nil {
				t.Fatal(err)
			}
		}
		rec, _, err := e.UploadJoin(t.Context(), strings.Repeat("cd", 20))
		want := []model.RepoTarget{{Namespace: "web", App: "web", Source: model.SourceImageSource}}
		if diff := cmp.Diff(want, rec.Targets); err != nil || diff != "" {
			t.Errorf("%v; targets (-want +got):\n%s", err, diff)
		}
	})
}
