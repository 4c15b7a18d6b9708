package servicetest

import (
	"io"
	"strings"
	"testing"

	"github.com/stateguard/stateguard/pkg/harness/natstest"
	"github.com/stateguard/stateguard/pkg/runtime/service"
)

// CommandLine is the command line of a service, as its tests give it.
type CommandLine struct {
	// Name is the service's name; CLI its command line (service.Commands).
	Name string
	CLI  service.RunFunc
	// Help are lines --help must show besides the flags and bootstrap's
	// (another subcommand's usage line).
	Help []string
	// BootstrapArgs are the flags bootstrap needs besides --nats-url.
	BootstrapArgs []string
	// Bucket is a KV bucket bootstrap creates.
	Bucket string
}

// Check runs c's command line three ways: --help lists the flags and the
// subcommands and succeeds; a word that is no subcommand is refused;
// `bootstrap` on a fresh JetStream succeeds and creates c.Bucket.
func Check(t *testing.T, c CommandLine) {
	t.Helper()
	none := func(string) string { return "" }
	var help strings.Builder
	if err := c.CLI(t.Context(), []string{"--help"}, none, &help); err != nil {
		t.Fatalf("--help: %v", err)
	}
	for _, want := range append([]string{"Usage of " + c.Name + ":", "-nats-url", c.Name + " bootstrap [flags]"}, c.Help...) {
		if !strings.Contains(help.String(), want) {
			t.Errorf("--help lacks %q:\n%s", want, help.String())
		}
	}
	if err := c.CLI(t.Context(), []string{"bootstrapp"}, none, io.Discard); err == nil || !strings.Contains(err.Error(), `unknown command "bootstrapp"`) {
		t.Errorf("bootstrapp: err = %v, want an unknown command", err)
	}

	srv := natstest.Run(t)
	args := append([]string{"bootstrap", "--nats-url", srv.ClientURL(), "--log-level", "warn"}, c.BootstrapArgs...)
	if err := c.CLI(t.Context(), args, none, io.Discard); err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	if _, err := natstest.Client(t, srv).JetStream().KeyValue(t.Context(), c.Bucket); err != nil {
		t.Errorf("after bootstrap, KV bucket %s: %v", c.Bucket, err)
	}
}
