package main

import (
	"testing"

	"github.com/stateguard/stateguard/pkg/runtime/service/servicetest"
)

// TestCommandLine: snapshotter's command line goes through service.Commands —
// --help lists the flags and the subcommands, an unknown subcommand is
// refused, and `snapshotter bootstrap` creates the service's KV bucket snapshotter-recommendations
// on a fresh JetStream and exits.
func TestCommandLine(t *testing.T) {
	servicetest.Check(t, servicetest.CommandLine{Name: name, CLI: cli, Bucket: "snapshotter-recommendations", Help: []string{"snapshotter restore-plan [--kubeconfig file] namespace/volumesnapshot"}})
}
