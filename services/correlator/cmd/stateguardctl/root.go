package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/runtime/envflag"
	"github.com/stateguard/stateguard/pkg/runtime/natsflag"
)

// Exit codes. A script tells an answer it can act on (not found, denied)
// from a failure to get one.
const (
	exitOK       = 0 // the command did what it was asked
	exitError    = 1 // it failed: a server unreachable or failing, a check that found a FAIL
	exitUsage    = 2 // the command line is wrong: unknown command or flag, bad argument, refused output format; or the server refused the input (400)
	exitNotFound = 3 // what the command names does not exist (404, no such object)
	exitDenied   = 4 // the token or the Kubernetes identity is missing or lacks the right (401, 403)
)

// codedError carries the exit code of an error.
type codedError struct {
	code int
	err  error
}

func (e *codedError) Error() string { return e.err.Error() }
func (e *codedError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return &codedError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

func notFoundErrorf(format string, args ...any) error {
	return &codedError{code: exitNotFound, err: fmt.Errorf(format, args...)}
}

// exitCode is the process exit code of err (nil is exitOK).
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	if ce, ok := errors.AsType[*codedError](err); ok {
		return ce.code
	}
	return exitError
}

// options are the global flags and what every command shares.
type options struct {
	server    string
	ingest    string
	token     string
	tokenFile string
	caFile    string
	output    string
	timeout   time.Duration
	kube      kubeOptions
	nats      events.ConnConfig

	getenv func(string) string
	out    io.Writer
	errOut io.Writer
	http   *http.Client
}

// Output formats (-o).
const (
	outText = "text"
	outWide = "wide"
	outJSON = "json"
	outYAML = "yaml"
)

var outputs = []string{outText, outWide, outJSON, outYAML}

// execute runs the command line args; the error's exitCode is the
// process's exit code.
func execute(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	o := &options{getenv: getenv, out: stdout, errOut: stderr}
	root := newRoot(o)
	root.SetArgs(args)
	_, err := root.ExecuteContextC(ctx)
	if err != nil && strings.HasPrefix(err.Error(), "unknown command") {
		// cobra's own refusal of a subcommand has no type of its own.
		return &codedError{code: exitUsage, err: err}
	}
	return err
}

func newRoot(o *options) *cobra.Command {
	root := &cobra.Command{
		Use:   "stateguardctl",
		Short: "The command-line client of stateguard",
		Long: `stateguardctl shows and acts on what stateguard knows: the posture of applications, snapshot policies and
snapshots, incidents, certificates and SARIF uploads; it checks an installation, takes on-demand snapshots and
restores a claim in place (restore create).

It talks to the correlator's API (--server, a token with --token or --token-file), the Kubernetes API
(--kubeconfig) for policies, snapshots and restores, NATS (--nats-url) for "events tail" and "check", and sastingest's
API (--ingest-server) for uploads. Every flag also reads an environment variable, named in its help.

Exit codes: 0 ok; 1 error (a server unreachable or failing, a check with a FAIL); 2 usage (unknown command
or flag, bad argument, refused output format, or input the server refused with 400); 3 not found; 4 denied
(401 or 403).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.ArbitraryArgs,
		RunE:          groupRun,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return o.complete()
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &codedError{code: exitUsage, err: err}
	})
	env := func(name string) string { return strings.TrimSpace(o.getenv(name)) }
	pf := root.PersistentFlags()
	pf.StringVar(&o.server, "server", or(env("STATEGUARD_SERVER"), "http://127.0.0.1:8083"), "correlator API base URL (env STATEGUARD_SERVER)")
	pf.StringVar(&o.ingest, "ingest-server", or(env("STATEGUARD_INGEST_SERVER"), "http://127.0.0.1:8080"), "sastingest API base URL, for upload get (env STATEGUARD_INGEST_SERVER)")
	pf.StringVar(&o.token, "token", env("STATEGUARD_TOKEN"), "API bearer token (env STATEGUARD_TOKEN)")
	pf.StringVar(&o.tokenFile, "token-file", env("STATEGUARD_TOKEN_FILE"), "file holding the API bearer token: the first line that is not blank or a # comment, its first field (env STATEGUARD_TOKEN_FILE)")
	pf.StringVar(&o.caFile, "ca-file", env("STATEGUARD_CA_FILE"), "PEM CA bundle that verifies the correlator's and the ingest's HTTPS certificates (--server https://…) instead of the system's roots (env STATEGUARD_CA_FILE)")
	pf.StringVarP(&o.output, "output", "o", or(env("STATEGUARD_OUTPUT"), outText), "output format: text, wide, json or yaml (env STATEGUARD_OUTPUT)")
	pf.DurationVar(&o.timeout, "request-timeout", 30*time.Second, "bound of each HTTP request")
	o.kube.register(pf, env)
	// The NATS flags are the services' own (pkg/events), with their
	// environment variables.
	nfs := flag.NewFlagSet("nats", flag.ContinueOnError)
	natsflag.Register(envflag.New(nfs, o.getenv), &o.nats)
	pf.AddGoFlagSet(nfs)
	_ = root.RegisterFlagCompletionFunc("output", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return outputs, cobra.ShellCompDirectiveNoFileComp
	})

	root.AddGroup(&cobra.Group{ID: "posture", Title: "Posture:"}, &cobra.Group{ID: "objects", Title: "Objects:"},
		&cobra.Group{ID: "ops", Title: "Operations:"})
	for _, c := range []*cobra.Command{statusCmd(o), whyCmd(o), restorePlanCmd(o), eventsCmd(o), auditCmd(o), reportCmd(o)} {
		c.GroupID = "posture"
		root.AddCommand(c)
	}
	for _, c := range []*cobra.Command{policyCmd(o), snapshotCmd(o), restoreCmd(o), incidentCmd(o), findingCmd(o), certCmd(o), uploadCmd(o)} {
		c.GroupID = "objects"
		root.AddCommand(c)
	}
	c := checkCmd(o)
	c.GroupID = "ops"
	root.AddCommand(c)
	// cobra's completion command only groups the shells: an unknown shell
	// would print its help and exit 0. (It takes its output stream when it
	// is made.)
	root.SetOut(o.out)
	root.SetErr(o.errOut)
	root.InitDefaultCompletionCmd()
	if comp, _, err := root.Find([]string{"completion"}); err == nil && comp != root {
		comp.Args, comp.RunE = cobra.ArbitraryArgs, groupRun
	}
	return root
}

// groupRun is the Run of a command that only groups others: alone it
// prints its help, with an argument it is a usage error (cobra would
// print the help and exit 0).
func groupRun(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErrorf("unknown command %q for %q (see %s --help)", args[0], cmd.CommandPath(), cmd.CommandPath())
	}
	return cmd.Help()
}

// group is a command that holds subcommands.
func group(use, short string, subs ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{Use: use, Short: short, Args: cobra.ArbitraryArgs, RunE: groupRun}
	c.AddCommand(subs...)
	return c
}

// complete checks the global flags and reads the token file; it runs
// before every command.
func (o *options) complete() error {
	if !slices.Contains(outputs, o.output) {
		return usageErrorf("output format %q: use one of %s", o.output, strings.Join(outputs, ", "))
	}
	if o.http == nil {
		o.http = &http.Client{Timeout: o.timeout}
		if o.caFile != "" {
			hc, err := httpsClient(o.caFile, o.timeout)
			if err != nil {
				return err
			}
			o.http = hc
		}
	}
	if o.token == "" && o.tokenFile != "" {
		b, err := os.ReadFile(o.tokenFile)
		if err != nil {
			return fmt.Errorf("token file: %w", err)
		}
		o.token = tokenFromFile(b)
		if o.token == "" {
			return usageErrorf("token file %s holds no token (only blank lines and # comments)", o.tokenFile)
		}
	}
	return nil
}

// tokenFromFile is the token of a tokens file: the first field of the
// first line that is neither blank nor a # comment. The correlator's
// tokens files put an optional name after the token ("<token> <actor>",
// see api.ParseTokens); the name is not part of the token.
func tokenFromFile(b []byte) string {
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		return strings.Fields(line)[0]
	}
	return ""
}

func or(v, def string) string {
	if v != "" {
		return v
	}
	return def
}

// print writes v in the chosen format: json or yaml encode v (the data
// itself, as the API or the cluster gave it); text and wide call text.
func (o *options) print(v any, text func(w io.Writer, wide bool) error) error {
	switch o.output {
	case outJSON:
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(o.out, "%s\n", b)
		return err
	case outYAML:
		b, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = o.out.Write(b)
		return err
	}
	return text(o.out, o.output == outWide)
}

// exactRef is an Args check for one namespace/name argument.
func exactRef(what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != 1 {
			return usageErrorf("want one argument: namespace/%s", what)
		}
		_, _, err := splitRef(args[0], what)
		return err
	}
}

// optionalRef is an Args check for at most one namespace or
// namespace/name argument.
func optionalRef(what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) > 1 {
			return usageErrorf("want at most one argument: namespace or namespace/%s", what)
		}
		if len(args) == 1 && strings.Contains(args[0], "/") {
			_, _, err := splitRef(args[0], what)
			return err
		}
		return nil
	}
}

// exactArgs is cobra.ExactArgs as a usage error.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErrorf("want %s", what)
		}
		return nil
	}
}

func splitRef(ref, what string) (string, string, error) {
	ns, name, ok := strings.Cut(ref, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return "", "", usageErrorf("%q: want namespace/%s", ref, what)
	}
	return ns, name, nil
}

// scope splits an optional namespace[/name] argument.
func scope(args []string) (ns, name string) {
	if len(args) == 0 {
		return "", ""
	}
	ns, name, _ = strings.Cut(args[0], "/")
	return ns, name
}

// httpsClient trusts the CAs in caFile (and TLS 1.2 or newer) instead of
// the system's.
func httpsClient(caFile string, timeout time.Duration) (*http.Client, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("ca file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("ca file %s: no PEM certificate in it", caFile)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Timeout: timeout, Transport: tr}, nil
}
