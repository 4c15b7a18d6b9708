package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/stateguard/stateguard/pkg/events"
)

// The browser tests' scene, in namespace shop: db ran v1 (scanned clean)
// on PVC data-db, snapshot db-1 was taken, then v2 replaced it and a scan
// found a critical finding in v2: an incident, with db-1 its restore point.
// web runs a version nobody scanned: at risk. db mounts a certificate that
// expires in 30 days.
const sceneSource = "/stateguard/console-test"

func digest(version string) string {
	sum := sha256.Sum256([]byte(version))
	return "sha256:" + hex.EncodeToString(sum[:])
}

func sceneSnapshot(ns, pvc, name, app, version string, at time.Time) events.Event {
	return events.MustNewEvent(events.TypeSnapshotCompleted, sceneSource, "snapshot-"+ns+"-"+name, events.SnapshotCompleted{
		Namespace: ns, PVC: pvc, VolumeSnapshot: name, CreationTime: at, RestoreSize: "1Gi", VolumeSnapshotClass: "csi",
		Workloads: []events.VolumeWorkload{{Pod: app + "-0", App: app, Owner: &events.ObjectRef{Kind: "StatefulSet", Namespace: ns, Name: app},
			Containers: []events.Container{{Name: app, Image: "registry.example/" + app + ":" + version, Digest: digest(version)}}}},
	})
}

func sceneSARIF(ns, app, upload, version string, at time.Time, findings ...events.Finding) events.Event {
	p := events.SARIFUploaded{UploadID: upload, Repository: "example/" + app, CommitSHA: fmt.Sprintf("%040x", len(version)),
		Ref: "refs/heads/main", Category: "gosec", App: app, Namespace: ns, Version: version,
		Images: []string{"registry.example/" + app + "@" + digest(version)}, Tools: []events.Tool{{Name: "gosec"}},
		Findings: findings, ReceivedAt: at}
	for _, f := range findings {
		p.ResultsTotal++
		if f.Severity == "critical" {
			p.BySeverity.Critical++
		}
	}
	return events.MustNewEvent(events.TypeSARIFUploaded, sceneSource, "sarif-"+upload, p)
}

func scene(now time.Time) []events.Event {
	t0 := now.Add(-72 * time.Hour)
	critical := events.Finding{Tool: "gosec", RuleID: "G402", Severity: "critical", CWEs: []string{"CWE-295"}, Fingerprint: "f-g402"}
	notAfter := now.Add(30 * 24 * time.Hour)
	return []events.Event{
		sceneSnapshot("shop", "data-db", "db-1", "db", "v1", t0),
		sceneSARIF("shop", "db", "up-db-v1", "v1", t0.Add(time.Minute)),
		sceneSnapshot("shop", "data-db", "db-2", "db", "v2", t0.Add(24*time.Hour)),
		sceneSARIF("shop", "db", "up-db-v2", "v2", t0.Add(25*time.Hour), critical),
		sceneSnapshot("shop", "data-web", "web-1", "web", "w1", t0.Add(2*time.Hour)),
		events.MustNewEvent(events.TypeCertificateExpiring, sceneSource, "cert-shop-db-tls-1", events.CertificateExpiring{
			Source: events.CertificateSource{Namespace: "shop", Secret: "db-tls", Key: "tls.crt"}, Threshold: "30d", DaysLeft: 30,
			Certificate: events.Certificate{Subject: "CN=db", Issuer: "CN=ca", Serial: "01", NotBefore: now.Add(-60 * 24 * time.Hour),
				NotAfter: notAfter, KeyType: "ECDSA", KeyBits: 256, SignatureAlgorithm: "ECDSA-SHA256"},
			Users: events.CertificateUsers{Workloads: []events.ObjectRef{{Kind: "StatefulSet", Namespace: "shop", Name: "db"}}},
		}),
	}
}

// sceneFix is the fix of db: v3 runs on data-db now (what the snapshotter's
// observer reports of the cluster's db-0, whose node reports v3's digest)
// and its scan is clean. The incident stays open until data-db is restored
// from a snapshot older than v2 (the correlator's rule: no vulnerable
// version runs, and the data no longer holds what v2 wrote).
func sceneFix(now time.Time) []events.Event {
	at := now.Add(-10 * time.Minute)
	obs := events.WorkloadObserved{Namespace: "shop", PVC: "data-db", ObservedAt: at, Pods: []events.ObservedPod{{
		Pod: "db-0", Owner: &events.ObjectRef{Kind: "StatefulSet", Namespace: "shop", Name: "db"}, App: "db", Version: "v3", StartedAt: &at,
		Containers: []events.Container{{Name: "db", Image: "registry.example/db@" + digest("v3"), ImageID: "registry.example/db@" + digest("v3"), Digest: digest("v3")}},
	}}}
	return []events.Event{
		events.MustNewEvent(events.TypeWorkloadObserved, sceneSource, events.ObservationID(obs), obs),
		sceneSARIF("shop", "db", "up-db-v3", "v3", at.Add(time.Minute)),
	}
}
