package kubetest

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Shared is one cluster for a package's tests: the first test that calls
// Use starts it, the package's TestMain calls Main, which stops it after
// the tests and keeps its logs when one of them failed. Tests sharing it
// keep apart by namespace.
//
//	var cluster = &kubetest.Shared{Options: kubetest.Options{WithoutCertManager: true}}
//
//	func TestMain(m *testing.M) { cluster.Main(m) }
type Shared struct {
	Options Options

	once   sync.Once
	c      *Cluster
	err    error
	failed atomic.Bool
}

// Use returns the package's cluster, started on first use; a cluster that
// cannot start fails the test with the reason (for missing binaries: the
// command that builds them).
func (s *Shared) Use(tb testing.TB) *Cluster {
	tb.Helper()
	s.once.Do(func() {
		s.c, s.err = StartClusterEnv(context.Background(), s.Options)
		if s.err == nil {
			tb.Logf("kubetest: cluster started in %s (logs in %s)", s.c.Startup.Round(time.Millisecond), s.c.LogDir())
		}
	})
	if s.err != nil {
		tb.Fatalf("kubetest: %v", s.err)
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			s.failed.Store(true)
		}
	})
	return s.c
}

// Main runs the package's tests, stops the cluster if one started
// (keeping its logs, and saying where, when a test failed) and exits with
// the tests' code.
func (s *Shared) Main(m *testing.M) {
	code := m.Run()
	if s.c != nil {
		if code != 0 || s.failed.Load() {
			s.c.Keep = true
			fmt.Fprintln(os.Stderr, "kubetest: the cluster's logs are kept in", s.c.LogDir())
		}
		if err := s.c.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "kubetest: stop cluster:", err)
		}
	}
	os.Exit(code)
}
