// Package kubetest runs a real Kubernetes control plane — kube-apiserver and
// etcd built from the Go module proxy by `make tools` — through
// controller-runtime's envtest, with the CRDs stateguard needs installed from
// the Go module cache: the CSI VolumeSnapshot CRDs from the
// external-snapshotter client/v8 module, cert-manager's from its module, and
// stateguard's own from deploy/kustomize.
//
// Start (or Main, from TestMain) gives the API server alone, which is all
// most packages need and starts fastest. StartCluster (StartClusterEnv
// outside a test) adds what binds claims, takes and restores snapshots and
// runs workloads, with no kubelet:
//
//   - kube-controller-manager with the Controllers (PV binder, PV and PVC
//     protection, Deployment, ReplicaSet, StatefulSet, Job, garbage
//     collector) and no listener (--secure-port=0);
//   - kube-scheduler;
//   - KWOK managing one Node (NodeName, labelled with the driver's topology
//     key): KWOK's node and pod Stages from its module, except pod-ready
//     and pod-complete. stateguard's pod-ready (kwok/pod-ready.yaml) makes
//     container statuses
//     carry an imageID digest (repo@sha256:<sha256 of the image reference>,
//     or the image's own digest when it is pinned by one), and its
//     pod-complete Stages (kwok/pod-complete.yaml): a Job's pod succeeds,
//     or fails with exit code 1 when its first container's command is
//     `false`, so a test can make a Job fail;
//   - the CSI driver of package csidriver, in the test binary, on a unix
//     socket, with csi-provisioner and csi-snapshotter pointed at it (both
//     with --extra-create-metadata, so the driver's calls name the
//     namespace and csidriver.InNamespace faults one test's calls only),
//     and the CSI snapshot-controller;
//   - the CSINode, the CSIDriver, and the default StorageClass and
//     VolumeSnapshotClass, both named ClassName.
//
// MainCluster, from TestMain, shares one cluster among a package's tests
// (each in its own Namespace): a cluster starts in seconds, but `make test`
// runs many packages. Each process logs to Cluster.LogDir (kept and
// printed when a test fails), dies with the test binary (a parent-death
// signal) and is stopped at cleanup; Cluster.Process returns one, to kill and restart it. A
// missing binary fails the test naming `make tools`. Faults are injected
// into the driver (Cluster.Driver.Inject); Cluster.ClaimDir is the
// directory holding a bound claim's data.
package kubetest
