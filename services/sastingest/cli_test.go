package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stateguard/stateguard/pkg/runtime/service/servicetest"
)

// TestCommandLine: sastingest's command line goes through service.Commands —
// --help lists the flags and the subcommands, an unknown subcommand is
// refused, and `sastingest bootstrap` creates the service's KV bucket SARIF_UPLOADS
// on a fresh JetStream and exits.
func TestCommandLine(t *testing.T) {
	// The same configuration as the service (the Job shares its ConfigMap):
	// sastingest refuses to start without a way to authenticate writes.
	tokens := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokens, []byte("t0ken-for-ci\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	servicetest.Check(t, servicetest.CommandLine{Name: name, CLI: cli, Bucket: "SARIF_UPLOADS", BootstrapArgs: []string{"--tokens-file", tokens}})
}
