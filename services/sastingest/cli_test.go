package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stateguard/stateguard/pkg/harness/natstest"
)

// TestCommandLine: sastingest's command line goes through service.Commands —
// --help lists the flags and the subcommands, an unknown subcommand is
// refused, and `sastingest bootstrap` creates the service's KV bucket SARIF_UPLOADS
// on a fresh JetStream and exits.
func TestCommandLine(t *testing.T) {
	none := func(string) string { return "" }
	var help strings.Builder
	if err := cli(t.Context(), []string{"--help"}, none, &help); err != nil {
		t.Fatalf("--help: %v", err)
	}
	for _, want := range []string{"Usage of sastingest:", "-nats-url", "sastingest bootstrap [flags]"} {
		if !strings.Contains(help.String(), want) {
			t.Errorf("--help lacks %q:\n%s", want, help.String())
		}
	}
	if err := cli(t.Context(), []string{"bootstrapp"}, none, io.Discard); err == nil || !strings.Contains(err.Error(), `unknown command "bootstrapp"`) {
		t.Errorf("bootstrapp: err = %v, want an unknown command", err)
	}

	srv := natstest.Run(t)
	// The same configuration as the service (the Job shares its ConfigMap):
	// sastingest refuses to start without a way to authenticate writes.
	tokens := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokens, []byte("t0ken-for-ci\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := cli(t.Context(), []string{"bootstrap", "--nats-url", srv.ClientURL(), "--log-level", "warn", "--tokens-file", tokens}, none, io.Discard); err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	js := natstest.Client(t, srv).JetStream()
	if _, err := js.KeyValue(t.Context(), "SARIF_UPLOADS"); err != nil {
		t.Errorf("after bootstrap, KV bucket SARIF_UPLOADS: %v", err)
	}
}
