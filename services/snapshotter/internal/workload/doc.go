// Package workload finds what runs on a PVC: the pods that mount it, their
// owners (a ReplicaSet resolved to its Deployment), their containers' image
// digests from status.containerStatuses[].imageID, and their
// app.kubernetes.io/name and version labels.
package workload
