// Package demo seeds the story that `make run` tells and the end-to-end
// test checks: a namespace with a database Deployment, its PVC, a TLS
// Secret signed by an in-cluster CA that expires soon, a SnapshotPolicy, and
// the pods that a kubelet would report — the control plane has no kubelet
// and no controllers, so the demo writes the ReplicaSet and the Pod with the
// image digests they run, and "deploys" a new version by changing them.
package demo
