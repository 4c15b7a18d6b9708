// Command stateguardctl is the command-line client of stateguard: the
// posture of applications, why a snapshot is pinned, clean or tainted, and
// the restore plan of an incident, over the correlator's API; and the live
// tail of every stateguard event over NATS.
//
//	stateguardctl status [namespace/app]
//	stateguardctl why namespace/snapshot
//	stateguardctl restore-plan namespace/app
//	stateguardctl events tail [--subject stateguard.>] [--max n]
package main
