package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/stateguard/stateguard/pkg/harness/snapsim"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "snapsim:", err)
		os.Exit(1)
	}
}

func run() error {
	kubeconfig := flag.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig file")
	failLabel := flag.String("fail-label", "stateguard.test/fail", "snapshots with this label fail")
	size := flag.String("restore-size", "1Gi", "restore size reported for every snapshot")
	flag.Parse()
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = *kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	log.Info("snapsim running", "host", cfg.Host)
	return snapsim.Run(ctx, cfg, snapsim.Options{
		RestoreSize: *size,
		Log:         log,
		Fail: func(s *snapv1.VolumeSnapshot) string {
			if _, ok := s.Labels[*failLabel]; ok {
				return "simulated failure (label " + *failLabel + ")"
			}
			return ""
		},
	})
}
