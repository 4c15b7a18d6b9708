package main

import (
	"io"
	"strings"
	"testing"

	"github.com/stateguard/stateguard/pkg/harness/natstest"
)

// TestCommandLine: correlator's command line goes through service.Commands —
// --help lists the flags and the subcommands, an unknown subcommand is
// refused, and `correlator bootstrap` creates the service's KV bucket stateguard-correlator
// on a fresh JetStream and exits.
func TestCommandLine(t *testing.T) {
	none := func(string) string { return "" }
	var help strings.Builder
	if err := cli(t.Context(), []string{"--help"}, none, &help); err != nil {
		t.Fatalf("--help: %v", err)
	}
	for _, want := range []string{"Usage of correlator:", "-nats-url", "correlator bootstrap [flags]"} {
		if !strings.Contains(help.String(), want) {
			t.Errorf("--help lacks %q:\n%s", want, help.String())
		}
	}
	if err := cli(t.Context(), []string{"bootstrapp"}, none, io.Discard); err == nil || !strings.Contains(err.Error(), `unknown command "bootstrapp"`) {
		t.Errorf("bootstrapp: err = %v, want an unknown command", err)
	}

	srv := natstest.Run(t)
	if err := cli(t.Context(), []string{"bootstrap", "--nats-url", srv.ClientURL(), "--log-level", "warn"}, none, io.Discard); err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	js := natstest.Client(t, srv).JetStream()
	if _, err := js.KeyValue(t.Context(), "stateguard-correlator"); err != nil {
		t.Errorf("after bootstrap, KV bucket stateguard-correlator: %v", err)
	}
}
