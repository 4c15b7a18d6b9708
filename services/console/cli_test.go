package main

import (
	"io"
	"strings"
	"testing"
)

// TestCommandLine: the console's command line goes through service.Commands
// like the services': --help lists the flags and succeeds (it exited 1), and
// a word that is not a flag is refused before anything starts (the console
// used to ignore it and connect).
func TestCommandLine(t *testing.T) {
	none := func(string) string { return "" }
	var help strings.Builder
	if err := cli(t.Context(), []string{"--help"}, none, &help); err != nil {
		t.Fatalf("--help: %v", err)
	}
	for _, want := range []string{"-correlator-url", "-nats-url"} {
		if !strings.Contains(help.String(), want) {
			t.Errorf("--help lacks %q:\n%s", want, help.String())
		}
	}
	err := cli(t.Context(), []string{"serve"}, none, io.Discard)
	if err == nil || !strings.Contains(err.Error(), `unknown command "serve"`) || !strings.Contains(err.Error(), "only flags") {
		t.Errorf("console serve: err = %v, want an unknown command (the console has only flags)", err)
	}
}
