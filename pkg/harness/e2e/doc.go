// Package e2e holds the end-to-end test: the four services as real
// processes, real JetStream, the real kube-apiserver, the case study played
// from the demo scene, and the whole flow checked as one OpenTelemetry trace.
package e2e
