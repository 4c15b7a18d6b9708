package demo

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/stateguard/stateguard/pkg/events"
)

// Env is where the demo runs.
type Env struct {
	RestConfig *rest.Config
	NATSURL    string
	IngestURL  string
	Token      string
	// Root is the repository root: bin/gosec and the sample app are there.
	Root string
	// Dir receives restore manifests.
	Dir   string
	Scene Scene
	// Timeout bounds each wait (default 3 minutes).
	Timeout time.Duration
	// CorrelatorURL is the correlator's API; OperatorToken one of its
	// operator tokens (asks for the restore).
	CorrelatorURL string
	OperatorToken string
	// ClaimDir finds the directory of a claim's volume: the demo writes
	// the app's data there (kubetest.Cluster.ClaimDir on the local
	// cluster).
	ClaimDir ClaimDirFunc
	// HTTPClient calls the ingest and the correlator (one that trusts the
	// stack's CA when they serve HTTPS); nil is http.DefaultClient.
	HTTPClient *http.Client
}

func (e Env) httpClient() *http.Client {
	if e.HTTPClient == nil {
		return http.DefaultClient
	}
	return e.HTTPClient
}

// Result is what the story measured: the SHA-256 of the app's data file
// when 1.0.0 wrote it (the known-good snapshot holds it), after 1.1.0
// changed it, and after the restore.
type Result struct {
	Incident      string
	Restore       string
	Snapshot      string
	KnownGood     string
	Changed       string
	Restored      string
	RestorePhases []string
}

// Run seeds the scene and plays the case study, printing the story:
// version 1.0.0 runs and is scanned clean, its snapshot is pinned as
// known-good; version 1.1.0 is deployed, snapshotted, and its scan finds a
// hard-coded credential; stateguard recommends restoring the known-good
// snapshot and rotates the TLS certificate the workload mounts; the fixed
// version 1.2.0 is deployed and scanned clean, an operator restores the
// incident's restore point through the correlator's API (the data file's
// checksum before and after), and the incident closes.
func Run(ctx context.Context, e Env, print func(string)) (Result, error) {
	var res Result
	if e.ClaimDir == nil || e.CorrelatorURL == "" || e.OperatorToken == "" {
		return res, fmt.Errorf("demo: the environment lacks the claim directories, the correlator URL or an operator token")
	}
	if e.Timeout == 0 {
		e.Timeout = 3 * time.Minute
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cs, err := kubernetes.NewForConfig(e.RestConfig)
	if err != nil {
		return res, err
	}
	dyn, err := dynamic.NewForConfig(e.RestConfig)
	if err != nil {
		return res, err
	}
	client, err := events.Connect(ctx, events.ConnConfig{URL: e.NATSURL, Name: "stateguard-demo", MaxReconnects: -1})
	if err != nil {
		return res, err
	}
	defer client.Close(context.Background())
	story := &Story{Dir: e.Dir, Print: func(l string) { print("story: " + l) }}
	sub, err := story.Follow(client.Conn())
	if err != nil {
		return res, err
	}
	defer func() { _ = sub.Unsubscribe() }()

	s := e.Scene
	v1, err := seed(ctx, cs, dyn, s, V1, func(v Version) error {
		sum, err := writeData(ctx, e.ClaimDir, s.Namespace, s.PVC, fmt.Sprintf("orders written by %s %s\n1001 alice 3 books\n1002 bob 1 lamp\n", s.App, v.Name))
		if err != nil {
			return err
		}
		res.KnownGood = sum
		print(fmt.Sprintf("demo: %s %s wrote %s into PVC %s's volume: sha256 %s", s.App, v.Name, DataFile, s.PVC, short(sum)))
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("seed: %w", err)
	}
	print(fmt.Sprintf("demo: seeded namespace %s: Deployment %s %s running (%s), PVC %s, TLS Secret %s signed by the in-cluster CA %s (expires in %s), SnapshotPolicy %s (%s)",
		s.Namespace, s.App, v1.Name, short(v1.Digest), s.PVC, s.TLSSecret, s.CASecret, s.CertExpiry, s.Policy, s.Schedule))

	gosec := filepath.Join(e.Root, "bin", "gosec")
	apps := filepath.Join(e.Root, "pkg", "harness", "demo", "testdata")
	upload := func(v Version, dir, commit string) error {
		sarif, err := Scan(ctx, gosec, filepath.Join(apps, dir))
		if err != nil {
			return err
		}
		url, err := PostGitHub(ctx, e.httpClient(), e.IngestURL, e.Token, Upload{
			Repository: "acme/shop-db", CommitSHA: commit, Ref: "refs/heads/main",
			App: s.App, Namespace: s.Namespace, Version: v.Name, Images: []string{v.Ref()}, Category: "gosec",
		}, sarif)
		if err != nil {
			return err
		}
		print(fmt.Sprintf("demo: CI posted gosec's SARIF for %s %s to the GitHub-compatible endpoint (status %s)", s.App, v.Name, url))
		return nil
	}
	if err := upload(v1, "app-v1", hex40('1')); err != nil {
		return res, err
	}
	print("demo: waiting for the policy's next slot to snapshot " + s.PVC + " …")
	if err := until(ctx, e.Timeout, func() bool { return story.Reached(events.TypeSnapshotPinRequested) > 0 }); err != nil {
		return res, fmt.Errorf("no known-good snapshot pinned: %w", err)
	}
	v2, err := Deploy(ctx, cs, s, V2)
	if err != nil {
		return res, err
	}
	print(fmt.Sprintf("demo: deployed %s %s: a new ReplicaSet runs it (%s), the old pod is gone; waiting for a snapshot taken while it runs …", s.App, v2.Name, short(v2.Digest)))
	// 1.1.0 writes to the data as the app would: the snapshots taken while
	// it runs hold the changed file.
	res.Changed, err = writeData(ctx, e.ClaimDir, s.Namespace, s.PVC, fmt.Sprintf("orders rewritten by %s %s\n1001 alice 3 books\n1002 bob 1 lamp\n1003 mallory 99 refunds\n", s.App, v2.Name))
	if err != nil {
		return res, err
	}
	print(fmt.Sprintf("demo: %s %s changed %s: sha256 %s", s.App, v2.Name, DataFile, short(res.Changed)))
	// The first snapshot after the rollout may still see the old pods: wait
	// for one that ran the new digest, so that the scan below finds the
	// version running and the incident starts at the upload.
	if err := until(ctx, e.Timeout, func() bool { return story.Snapshotted(v2.Digest) > 0 }); err != nil {
		return res, fmt.Errorf("no snapshot of %s: %w", v2.Name, err)
	}
	if err := upload(v2, "app-v2", hex40('2')); err != nil {
		return res, err
	}
	if err := until(ctx, e.Timeout, func() bool { return story.Reached(events.TypeCertificateRotated) > 0 }); err != nil {
		return res, fmt.Errorf("certificate not rotated: %w", err)
	}
	res.Incident = story.Incident()
	if res.Incident == "" {
		return res, fmt.Errorf("no incident opened")
	}

	// The fix: 1.2.0 reads its password from the environment again; its
	// scan is clean.
	v3, err := Deploy(ctx, cs, s, V3)
	if err != nil {
		return res, err
	}
	print(fmt.Sprintf("demo: deployed the fix %s %s (%s)", s.App, v3.Name, short(v3.Digest)))
	if err := upload(v3, "app-v3", hex40('3')); err != nil {
		return res, err
	}

	if err := restoreIncident(ctx, e, dyn, story, &res, print); err != nil {
		return res, err
	}
	print("demo: the story is complete — kubectl -n " + s.Namespace + " get volumesnapshots,restores -L stateguard.io/pinned")
	return res, nil
}

// restoreIncident asks the correlator's operator API to restore the
// incident's restore point — what `stateguardctl restore create --incident
// ID --wait` does — follows the Restore's phases, prints the data file's
// checksum before and after, and waits for the incident to close.
func restoreIncident(ctx context.Context, e Env, dyn dynamic.Interface, story *Story, res *Result, print func(string)) error {
	s := e.Scene
	// The operator restores the incident's restore point: what
	// `stateguardctl restore create --incident ID --wait` does.
	before, err := dataChecksum(ctx, e.ClaimDir, s.Namespace, s.PVC)
	if err != nil {
		return err
	}
	print(fmt.Sprintf("demo: before the restore %s in PVC %s: sha256 %s", DataFile, s.PVC, short(before)))
	print("demo: stateguardctl restore create --incident " + res.Incident + " --wait")
	acc, err := requestRestore(ctx, e.httpClient(), e.CorrelatorURL, e.OperatorToken, res.Incident)
	if err != nil {
		return err
	}
	res.Restore, res.Snapshot = acc.Restore, acc.Snapshot
	print(fmt.Sprintf("demo: restore %s/%s requested: claim %s from snapshot %s (incident %s) by %s", acc.Namespace, acc.Restore, or(acc.PVC, s.PVC), acc.Snapshot, res.Incident, acc.Actor))
	st, err := followRestore(ctx, dyn, acc.Namespace, acc.Restore, e.Timeout, func(l string) {
		print(l)
	})
	for _, p := range st.Phases {
		res.RestorePhases = append(res.RestorePhases, p.Phase)
	}
	if err != nil {
		return err
	}
	print(fmt.Sprintf("demo: restore %s/%s Completed: new PV %s, old PV %s retained, safety snapshot %s", acc.Namespace, acc.Restore, st.NewPV, st.OldPV, st.SafetySnapshot))
	res.Restored, err = dataChecksum(ctx, e.ClaimDir, s.Namespace, s.PVC)
	if err != nil {
		return err
	}
	verdict := "the known-good snapshot's"
	if res.Restored != res.KnownGood {
		verdict = "NOT the known-good snapshot's " + short(res.KnownGood)
	}
	print(fmt.Sprintf("demo: after the restore  %s in PVC %s: sha256 %s (%s)", DataFile, s.PVC, short(res.Restored), verdict))
	print("demo: waiting for the incident to close …")
	if err := until(ctx, e.Timeout, func() bool { return story.Closed(res.Incident) }); err != nil {
		return fmt.Errorf("incident %s not closed: %w", res.Incident, err)
	}
	return nil
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func hex40(c byte) string { return hex64(c)[:40] }

func until(ctx context.Context, timeout time.Duration, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return nil
}
