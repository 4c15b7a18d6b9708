package service

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

// RunFunc is a service's entry point: it returns when ctx ends (after a
// graceful shutdown) or on a fatal error.
type RunFunc func(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error

// Main runs fn with a context that the first SIGINT or SIGTERM cancels; a
// second signal exits at once. It exits the process once, with status 1 on
// error.
func Main(fn RunFunc) {
	// A soft memory limit at 90% of the container's (cgroup) limit, so the
	// garbage collector works harder before the kernel kills the process;
	// GOMEMLIMIT or AUTOMEMLIMIT in the environment take precedence. Without
	// a cgroup limit nothing changes.
	_, _ = memlimit.Set()
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		cancel()
		<-sigs
		fmt.Fprintln(os.Stderr, "second signal: exiting now")
		os.Exit(2)
	}()
	err := fn(ctx, os.Args[1:], os.Getenv, os.Stdout)
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", os.Args[0], err)
		os.Exit(1)
	}
}
