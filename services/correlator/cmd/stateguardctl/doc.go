// Command stateguardctl is the command-line client of stateguard (cobra):
// the posture of applications, why a snapshot is pinned, clean or tainted,
// and restore plans, over the correlator's API; SnapshotPolicies and
// VolumeSnapshots over the Kubernetes API, with the correlator's verdict
// and on-demand snapshots; Restores (create through the correlator's API,
// then followed, listed and described over the Kubernetes API); incidents, findings and certificates with the
// operator's writes (resolve, dismiss, rotate); SARIF uploads over
// sastingest's API; the live tail of every event over NATS; and a check of
// the installation.
//
//	stateguardctl status [namespace/app]
//	stateguardctl why namespace/snapshot
//	stateguardctl restore-plan namespace/app
//	stateguardctl events tail [--subject stateguard.>] [--max n]
//	stateguardctl policy get|describe ...
//	stateguardctl snapshot get|describe|create ...
//	stateguardctl restore create|get|describe|logs ...
//	stateguardctl incident get|describe|resolve ...
//	stateguardctl finding dismiss namespace/app --rule R --reason ...
//	stateguardctl cert get|rotate ...
//	stateguardctl upload get id
//	stateguardctl check
//	stateguardctl completion bash|zsh|fish|powershell
//
// Every command takes -o text|wide|json|yaml and --help; exit codes are 0
// ok, 1 error, 2 usage, 3 not found, 4 denied (see root.go).
package main
