package demo

import (
	"context"
	"fmt"
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
}

// Run seeds the scene and plays the case study, printing the story:
// version 1.0.0 runs and is scanned clean, its snapshot is pinned as
// known-good; version 1.1.0 is deployed, snapshotted, and its scan finds a
// hard-coded credential; stateguard recommends restoring the known-good
// snapshot and rotates the TLS certificate the workload mounts.
func Run(ctx context.Context, e Env, print func(string)) error {
	if e.Timeout == 0 {
		e.Timeout = 3 * time.Minute
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cs, err := kubernetes.NewForConfig(e.RestConfig)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(e.RestConfig)
	if err != nil {
		return err
	}
	client, err := events.Connect(ctx, events.ConnConfig{URL: e.NATSURL, Name: "stateguard-demo", MaxReconnects: -1})
	if err != nil {
		return err
	}
	defer client.Close(context.Background())
	story := &Story{Dir: e.Dir, Print: func(l string) { print("story: " + l) }}
	sub, err := story.Follow(client.Conn())
	if err != nil {
		return err
	}
	defer func() { _ = sub.Unsubscribe() }()

	s := e.Scene
	v1, err := Seed(ctx, cs, dyn, s, V1)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
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
		url, err := PostGitHub(ctx, e.IngestURL, e.Token, Upload{
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
		return err
	}
	print("demo: waiting for the policy's next slot to snapshot " + s.PVC + " …")
	if err := until(ctx, e.Timeout, func() bool { return story.Reached(events.TypeSnapshotPinRequested) > 0 }); err != nil {
		return fmt.Errorf("no known-good snapshot pinned: %w", err)
	}
	v2, err := Deploy(ctx, cs, s, V2)
	if err != nil {
		return err
	}
	print(fmt.Sprintf("demo: deployed %s %s: a new ReplicaSet runs it (%s), the old pod is gone; waiting for a snapshot taken while it runs …", s.App, v2.Name, short(v2.Digest)))
	// The first snapshot after the rollout may still see the old pods: wait
	// for one that ran the new digest, so that the scan below finds the
	// version running and the incident starts at the upload.
	if err := until(ctx, e.Timeout, func() bool { return story.Snapshotted(v2.Digest) > 0 }); err != nil {
		return fmt.Errorf("no snapshot of %s: %w", v2.Name, err)
	}
	if err := upload(v2, "app-v2", hex40('2')); err != nil {
		return err
	}
	if err := until(ctx, e.Timeout, func() bool { return story.Reached(events.TypeCertificateRotated) > 0 }); err != nil {
		return fmt.Errorf("certificate not rotated: %w", err)
	}
	print("demo: the story is complete — kubectl -n " + s.Namespace + " get volumesnapshots -L stateguard.io/pinned")
	return nil
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
