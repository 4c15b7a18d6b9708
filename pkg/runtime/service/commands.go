package service

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Command is one of a service's subcommands: `<service> <Name> [args]`,
// such as `snapshotter bootstrap` or `snapshotter restore-plan ns/name`.
// A Command parses its own arguments (with a flag.FlagSet whose output is
// stdout, like the service's, so `<service> <Name> --help` prints its
// flags).
type Command struct {
	// Name is the word that selects the command.
	Name string
	// Args describes what follows Name, for --help ("[flags] namespace/name").
	Args string
	// Summary says what the command does in one line, for --help.
	Summary string
	// Run runs the command with the arguments after Name.
	Run RunFunc
}

// BootstrapCommand is the `bootstrap` subcommand every service has: run
// loads the service's configuration from the arguments and calls
// Common.Bootstrap.
func BootstrapCommand(run RunFunc) Command {
	return Command{
		Name:    "bootstrap",
		Args:    "[flags]",
		Summary: "as the admin NATS user, create or update the streams and this service's consumers and buckets, then exit",
		Run:     run,
	}
}

// Commands is a service's command line, written once for every service:
// `<name> [flags]` runs the service (run), `<name> <command> [args]` runs
// one of cmds with the arguments after its name. An unknown command is an
// error naming the known ones. `--help` (anywhere a flag is read) prints the
// flags, and for the service the list of commands, to stdout and exits 0:
// a RunFunc that sees --help prints its flags and returns flag.ErrHelp, as
// a flag.FlagSet with ContinueOnError and stdout as its output does.
//
// It returns the RunFunc to give Main (and that tests call, so they go
// through the same dispatch as the binary).
func Commands(name string, run RunFunc, cmds ...Command) RunFunc {
	return func(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
		if len(args) == 0 || strings.HasPrefix(args[0], "-") {
			err := run(ctx, args, getenv, stdout)
			if !errors.Is(err, flag.ErrHelp) {
				return err
			}
			return printCommands(stdout, name, cmds)
		}
		for _, c := range cmds {
			if c.Name == args[0] {
				err := c.Run(ctx, args[1:], getenv, stdout)
				if errors.Is(err, flag.ErrHelp) {
					return nil
				}
				return err
			}
		}
		return fmt.Errorf("unknown command %q: %s", args[0], known(name, cmds))
	}
}

// known names the commands a service has, for an error.
func known(name string, cmds []Command) string {
	if len(cmds) == 0 {
		return fmt.Sprintf("%s has no commands, only flags (see %s --help)", name, name)
	}
	names := make([]string, len(cmds))
	for i, c := range cmds {
		names[i] = c.Name
	}
	return fmt.Sprintf("%s's commands are %s (see %s --help)", name, strings.Join(names, ", "), name)
}

// printCommands ends the service's --help with its commands.
func printCommands(w io.Writer, name string, cmds []Command) error {
	if len(cmds) == 0 {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nCommands (%s <command> --help shows a command's flags):\n", name)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, c := range cmds {
		fmt.Fprintf(tw, "  %s\t%s\n", strings.TrimSpace(name+" "+c.Name+" "+c.Args), c.Summary)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := io.WriteString(w, b.String())
	return err
}
