package main

import (
	"testing"

	"github.com/stateguard/stateguard/pkg/runtime/service/servicetest"
)

// TestCommandLine: certwatcher's command line goes through service.Commands —
// --help lists the flags and the subcommands, an unknown subcommand is
// refused, and `certwatcher bootstrap` creates the service's KV bucket certwatcher
// on a fresh JetStream and exits.
func TestCommandLine(t *testing.T) {
	servicetest.Check(t, servicetest.CommandLine{Name: name, CLI: cli, Bucket: "certwatcher"})
}
