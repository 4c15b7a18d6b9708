// Package demo seeds the story that `make run` tells and the end-to-end
// test checks: a namespace with a database Deployment, its PVC, a TLS
// Secret signed by an in-cluster CA that expires soon and a SnapshotPolicy,
// on the local cluster of kubetest.StartClusterEnv. The cluster's
// controllers make the Deployment's ReplicaSets and pods, KWOK's node runs
// them and reports their image digests, the CSI snapshot controllers and
// the test CSI driver take the snapshots; the demo "deploys" a new version
// by changing the Deployment's template and waits for the rollout.
// cert-manager is not run (its controller is not served by the module
// proxy): the demo's certificate is rotated by the in-cluster CA method.
// The app's data is a file the demo writes into the claim's volume (the
// driver's directory of it, Env.ClaimDir); after the incident the demo asks
// the correlator's operator API for the restore of its restore point, as
// `stateguardctl restore create --incident ID --wait` does, follows the
// Restore's phases and compares the file's checksums.
package demo
