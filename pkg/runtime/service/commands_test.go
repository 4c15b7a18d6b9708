package service_test

import (
	"context"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stateguard/stateguard/pkg/runtime/service"
)

// recorder is a RunFunc that parses a --verbose flag with a FlagSet whose
// output is stdout (as every service's config does) and records what it
// was called with.
type recorder struct {
	name  string
	calls *[]string
}

func (r recorder) run(_ context.Context, args []string, _ func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet(r.name, flag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.Bool("verbose", false, "say more")
	if err := fs.Parse(args); err != nil {
		return err
	}
	*r.calls = append(*r.calls, r.name+" "+strings.Join(fs.Args(), " "))
	return nil
}

func newCLI(calls *[]string) service.RunFunc {
	return service.Commands("svc", recorder{"svc", calls}.run,
		service.BootstrapCommand(recorder{"svc bootstrap", calls}.run),
		service.Command{Name: "restore-plan", Args: "[flags] namespace/name", Summary: "print a plan", Run: recorder{"svc restore-plan", calls}.run},
	)
}

// TestCommandsDispatch: no command (or a flag first) runs the service; a
// command's name runs it with the arguments after the name.
func TestCommandsDispatch(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{nil, []string{"svc "}},
		{[]string{"--verbose"}, []string{"svc "}},
		{[]string{"bootstrap"}, []string{"svc bootstrap "}},
		{[]string{"bootstrap", "--verbose"}, []string{"svc bootstrap "}},
		{[]string{"restore-plan", "--verbose", "shop/db-1"}, []string{"svc restore-plan shop/db-1"}},
		{[]string{"restore-plan", "bootstrap"}, []string{"svc restore-plan bootstrap"}},
	} {
		var calls []string
		if err := newCLI(&calls)(t.Context(), tt.args, nil, io.Discard); err != nil {
			t.Fatalf("%q: %v", tt.args, err)
		}
		if diff := cmp.Diff(tt.want, calls); diff != "" {
			t.Errorf("%q: calls (-want +got):\n%s", tt.args, diff)
		}
	}
}

// TestCommandsUnknown: a word that is no command is an error naming the
// commands there are, and runs nothing.
func TestCommandsUnknown(t *testing.T) {
	var calls []string
	err := newCLI(&calls)(t.Context(), []string{"bootstrapp", "--verbose"}, nil, io.Discard)
	if err == nil || !strings.Contains(err.Error(), `unknown command "bootstrapp"`) || !strings.Contains(err.Error(), "bootstrap, restore-plan") {
		t.Errorf("err = %v, want an unknown command naming bootstrap, restore-plan", err)
	}
	if len(calls) > 0 {
		t.Errorf("ran %q", calls)
	}
	err = service.Commands("plain", recorder{"plain", &calls}.run)(t.Context(), []string{"serve"}, nil, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "plain has no commands") {
		t.Errorf("err = %v, want: plain has no commands", err)
	}
}

// TestCommandsHelp: --help on the service prints its flags, then its
// commands, and succeeds; --help on a command prints that command's flags
// only.
func TestCommandsHelp(t *testing.T) {
	var calls []string
	var out strings.Builder
	if err := newCLI(&calls)(t.Context(), []string{"--help"}, nil, &out); err != nil {
		t.Fatalf("--help: %v", err)
	}
	help := out.String()
	for _, want := range []string{"Usage of svc:", "-verbose", "Commands (svc <command> --help", "svc bootstrap [flags]", "as the admin NATS user", "svc restore-plan [flags] namespace/name  print a plan"} {
		if !strings.Contains(help, want) {
			t.Errorf("--help lacks %q:\n%s", want, help)
		}
	}
	if i, j := strings.Index(help, "-verbose"), strings.Index(help, "Commands"); i > j {
		t.Errorf("commands before flags:\n%s", help)
	}
	out.Reset()
	if err := newCLI(&calls)(t.Context(), []string{"restore-plan", "-h"}, nil, &out); err != nil {
		t.Fatalf("restore-plan -h: %v", err)
	}
	if help := out.String(); !strings.Contains(help, "Usage of svc restore-plan:") || strings.Contains(help, "Commands") {
		t.Errorf("restore-plan -h:\n%s", help)
	}
	if len(calls) > 0 {
		t.Errorf("--help ran %q", calls)
	}
}

// TestCommandsErrorsPassThrough: a command's or the service's error is
// returned as it is.
func TestCommandsErrorsPassThrough(t *testing.T) {
	boom := errors.New("boom")
	fail := func(context.Context, []string, func(string) string, io.Writer) error { return boom }
	cli := service.Commands("svc", fail, service.BootstrapCommand(fail))
	for _, args := range [][]string{nil, {"bootstrap"}} {
		if err := cli(t.Context(), args, nil, io.Discard); !errors.Is(err, boom) {
			t.Errorf("%q: err = %v, want boom", args, err)
		}
	}
	var calls []string
	if err := newCLI(&calls)(t.Context(), []string{"--no-such-flag"}, nil, io.Discard); err == nil || errors.Is(err, flag.ErrHelp) {
		t.Errorf("--no-such-flag: err = %v", err)
	}
}
