package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/stateguard/stateguard/pkg/runtime/envflag"
	"github.com/stateguard/stateguard/services/snapshotter/internal/plan"
)

// restorePlan is `snapshotter restore-plan [--kubeconfig f] namespace/name`:
// it prints the manifest of the restore plan, ready for kubectl apply -f -,
// followed by the steps as YAML comments.
func restorePlan(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("snapshotter restore-plan", flag.ContinueOnError)
	fs.SetOutput(stdout)
	var kubeconfig string
	envflag.New(fs, getenv).String(&kubeconfig, "kubeconfig", "KUBECONFIG", "", "kubeconfig file; empty uses the in-cluster service account")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: snapshotter restore-plan [--kubeconfig file] namespace/volumesnapshot")
	}
	ns, name, ok := strings.Cut(fs.Arg(0), "/")
	if !ok || ns == "" || name == "" {
		return fmt.Errorf("restore-plan: want namespace/volumesnapshot, got %q", fs.Arg(0))
	}
	cfg, err := kubeConfig(kubeconfig)
	if err != nil {
		return err
	}
	c, err := newClient(cfg)
	if err != nil {
		return err
	}
	p, err := plan.For(ctx, c, ns, name)
	if err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString(p.Manifest)
	if !strings.HasSuffix(p.Manifest, "\n") {
		b.WriteString("\n")
	}
	b.WriteString("# Steps:\n")
	for i, s := range p.Steps {
		fmt.Fprintf(&b, "# %d. %s\n", i+1, s)
	}
	b.WriteString("# restore.yaml (one step: the snapshotter carries the steps out):\n")
	for _, l := range strings.Split(strings.TrimSuffix(p.Restore, "\n"), "\n") {
		b.WriteString("#   " + l + "\n")
	}
	_, err = io.WriteString(stdout, b.String())
	return err
}
