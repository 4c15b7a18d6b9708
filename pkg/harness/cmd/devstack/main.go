package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/stateguard/stateguard/pkg/harness/kubetest"
	"github.com/stateguard/stateguard/pkg/harness/stack"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "devstack:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, out io.Writer) error {
	fs := flag.NewFlagSet("devstack", flag.ContinueOnError)
	demo := fs.Bool("demo", true, "seed the demo and print its story")
	dir := fs.String("dir", ".stateguard", "state directory (NATS store, kubeconfig, logs)")
	natsPort := fs.Int("nats-port", 4222, "port of the embedded NATS server (0: any free port)")
	kubeconfig := fs.String("kubeconfig", "", "use this cluster instead of a local control plane (KUBECONFIG in the environment is ignored)")
	useTLS := fs.Bool("tls", false, "serve every service over HTTPS with certificates of a CA made for the stack (plain HTTP on loopback otherwise)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	root, err := kubetest.RepoRoot()
	if err != nil {
		return err
	}
	abs := *dir
	if !filepath.IsAbs(abs) {
		abs = filepath.Join(root, abs)
	}
	// A fresh store each run: the demo tells its story from the start.
	_ = os.RemoveAll(filepath.Join(abs, "nats"))
	log := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctrllog.SetLogger(logr.FromSlogHandler(log.Handler()))
	cluster, note := chooseCluster(*kubeconfig, getenv("KUBECONFIG"))
	if note != "" {
		log.Info(note)
	}
	start := time.Now()
	s, err := stack.Start(ctx, stack.Config{
		Root:       root,
		Dir:        abs,
		NATSPort:   *natsPort,
		Kubeconfig: cluster,
		Ports:      stack.DefaultPorts,
		Env:        []string{"LOG_LEVEL=info"},
		ServiceEnv: map[string][]string{
			"correlator": {"CORRELATOR_CONFIG=" + filepath.Join(root, "services", "correlator", "config.example.yaml")},
		},
		Log: log,
		TLS: *useTLS,
	})
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(out, "stopping…")
		sctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := s.Stop(sctx); err != nil {
			fmt.Fprintln(out, "stop:", err)
		}
		fmt.Fprintln(out, "stopped; no process left behind")
	}()
	fmt.Fprintf(out, "\nstateguard is running (started in %s)\n", time.Since(start).Round(time.Second))
	fmt.Fprintf(out, "  NATS            %s   (bin/nats --server %s sub 'stateguard.>' --headers-only)\n", s.NATSURL, s.NATSURL)
	fmt.Fprintf(out, "  kubeconfig      %s   (KUBECONFIG=%s kubectl get volumesnapshots -A)\n", s.Kubeconfig, s.Kubeconfig)
	fmt.Fprintf(out, "  ingest          %s/v1/sarif  (GitHub-compatible: %s/repos/{owner}/{repo}/code-scanning/sarifs)\n", s.URL("sastingest"), s.URL("sastingest"))
	fmt.Fprintf(out, "  correlator API  %s/v1/apps\n", s.URL("correlator"))
	if s.CAFile != "" {
		fmt.Fprintf(out, "  HTTPS CA        %s   (curl --cacert %s; stateguardctl --ca-file %s or STATEGUARD_CA_FILE)\n", s.CAFile, s.CAFile, s.CAFile)
	}
	fmt.Fprintf(out, "  API token       %s (in %s)\n", s.Token, s.TokensFile())
	fmt.Fprintf(out, "  operator token  %s (in %s; restore, resolve, dismiss)\n", s.OperatorToken, s.OperatorTokensFile())
	fmt.Fprintf(out, "  console         %s  (log in with the API token to read, the operator token to restore)\n", consoleURL(s))
	for _, name := range stack.Services {
		fmt.Fprintf(out, "  %-15s %s/metrics  /healthz  /readyz   log %s\n", name, s.URL(name), s.LogFile(name))
	}
	fmt.Fprintln(out, "\nCtrl-C stops everything.")
	if *demo {
		if err := runDemo(ctx, s, root, abs, out); err != nil && ctx.Err() == nil {
			fmt.Fprintln(out, "demo:", err)
		}
	}
	<-ctx.Done()
	return nil
}

// consoleURL is the console's login page.
func consoleURL(s *stack.Stack) string { return s.URL("console") + "/login" }

// chooseCluster decides which cluster the stack uses: only the one given
// with -kubeconfig (`make run KUBECONFIG=…` passes it). A KUBECONFIG in the
// environment — the README's own export, or an SRE's production context — is
// ignored, so the demo is never seeded into a cluster nobody asked for; the
// note says so.
func chooseCluster(flagKubeconfig, envKubeconfig string) (kubeconfig, note string) {
	if flagKubeconfig != "" {
		return flagKubeconfig, ""
	}
	if envKubeconfig != "" {
		return "", "ignoring KUBECONFIG from the environment (" + envKubeconfig + "): starting a local control plane; use -kubeconfig or make run KUBECONFIG=… to use a cluster"
	}
	return "", ""
}
