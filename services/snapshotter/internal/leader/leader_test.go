package leader

import (
	"context"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/stateguard/stateguard/pkg/harness/kubetest"
)

// env is the package's kube-apiserver: the election runs on a real Lease.
var env *kubetest.Env

func TestMain(m *testing.M) {
	os.Exit(kubetest.Main(m, &env, kubetest.Options{WithoutCertManager: true}))
}

// replica is one candidate in a test: its Run and what its lead saw.
type replica struct {
	id     string
	cancel context.CancelFunc
	done   chan error
	once   sync.Once

	mu     sync.Mutex
	terms  []context.Context // one lead context per time it became leader
	starts []time.Time       // when each term began
}

// leading says whether the replica is in a term now.
func (r *replica) leading() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.terms) > 0 && r.terms[len(r.terms)-1].Err() == nil
}

func (r *replica) termCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.terms)
}

// start runs Run for id on the Lease ns/name until the test ends or stop.
func start(t *testing.T, ns, id string, cfg Config) *replica {
	t.Helper()
	cfg.Namespace, cfg.Name, cfg.Identity = ns, "snapshotter", id
	r := &replica{id: id, done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		r.done <- Run(ctx, env.Client, cfg, slog.New(slog.DiscardHandler), func(ctx context.Context) {
			r.mu.Lock()
			r.terms = append(r.terms, ctx)
			r.starts = append(r.starts, time.Now())
			r.mu.Unlock()
			<-ctx.Done()
		})
	}()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop ends the replica's Run (once) and fails the test if it returned an
// error.
func (r *replica) stop(t *testing.T) {
	t.Helper()
	r.once.Do(func() {
		r.cancel()
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("%s: Run: %v", r.id, err)
			}
		case <-time.After(2 * time.Minute):
			t.Errorf("%s: Run did not return after its context ended", r.id)
		}
	})
}

func (r *replica) firstStart() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.starts[0]
}

// eventually polls cond (generously: the machine may be loaded) until it
// holds, or fails the test after within.
func eventually(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, within, true, func(context.Context) (bool, error) { return cond(), nil }); err != nil {
		t.Fatalf("%s: not within %s", what, within)
	}
}

func holder(t *testing.T, ns string) string {
	t.Helper()
	l, err := env.Client.CoordinationV1().Leases(ns).Get(t.Context(), "snapshotter", metav1.GetOptions{})
	if err != nil {
		return ""
	}
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// TestOneLeadsAndHandsOverOnStop: of two replicas on one Lease only one
// leads, and the Lease names it; when it stops, it releases the Lease, so
// the other leads at once rather than after the lease duration (60 s here,
// longer than the test waits for the hand-over).
func TestOneLeadsAndHandsOverOnStop(t *testing.T) {
	ns := env.Namespace(t, nil)
	cfg := Config{LeaseDuration: 60 * time.Second, RenewDeadline: 40 * time.Second, RetryPeriod: 200 * time.Millisecond}
	a, b := start(t, ns, "a", cfg), start(t, ns, "b", cfg)
	eventually(t, "a leader", time.Minute, func() bool { return a.leading() || b.leading() })
	first, second := a, b
	if b.leading() {
		first, second = b, a
	}
	if got := holder(t, ns); got != first.id {
		t.Fatalf("lease held by %q, but %s leads", got, first.id)
	}
	if second.termCount() != 0 {
		t.Fatalf("%s leads while %s holds the lease", second.id, first.id)
	}

	stopped := time.Now()
	first.stop(t)
	if first.leading() {
		t.Errorf("%s still in its term after Run returned", first.id)
	}
	eventually(t, second.id+" leading after "+first.id+" stopped", 30*time.Second, second.leading)
	t.Logf("hand-over took %s", time.Since(stopped).Round(10*time.Millisecond))
	if second.firstStart().Before(stopped) {
		t.Errorf("%s began leading before %s stopped", second.id, first.id)
	}
	if got := holder(t, ns); got != second.id {
		t.Errorf("lease held by %q, want %s", got, second.id)
	}
}

// TestCampaignsAgainAfterLosingTheLease: when another holder takes the
// Lease (here written by hand, as a replica that got it through a network
// partition would), the leader's term ends (its context is cancelled) and
// it campaigns again, leading a second time once that lease expires.
func TestCampaignsAgainAfterLosingTheLease(t *testing.T) {
	ns := env.Namespace(t, nil)
	r := start(t, ns, "a", Config{LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 200 * time.Millisecond})
	eventually(t, "a leading", time.Minute, r.leading)

	intruder, seconds := "intruder", int32(3)
	err := wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		l, err := env.Client.CoordinationV1().Leases(ns).Get(ctx, "snapshotter", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		now := metav1.NewMicroTime(time.Now())
		l.Spec = coordinationv1.LeaseSpec{HolderIdentity: &intruder, LeaseDurationSeconds: &seconds, AcquireTime: &now, RenewTime: &now}
		_, err = env.Client.CoordinationV1().Leases(ns).Update(ctx, l, metav1.UpdateOptions{})
		return err == nil, nil // a conflict: a renewal came between; again
	})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "a's first term ended", time.Minute, func() bool { return !r.leading() })
	eventually(t, "a leading again", time.Minute, func() bool { return r.termCount() == 2 && r.leading() })
	select {
	case err := <-r.done:
		t.Fatalf("Run returned (%v) while its context was alive", err)
	default:
	}
	if got := holder(t, ns); got != "a" {
		t.Errorf("lease held by %q, want a", got)
	}
}

// TestRequiresLeaseAndIdentity: an election without a Lease name,
// namespace or identity is refused before it starts.
func TestRequiresLeaseAndIdentity(t *testing.T) {
	for _, cfg := range []Config{
		{Name: "l", Identity: "a"},
		{Namespace: "ns", Identity: "a"},
		{Namespace: "ns", Name: "l"},
	} {
		led := false
		// Bounded: an election that went ahead would run until ctx ends.
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		err := Run(ctx, env.Client, cfg, slog.New(slog.DiscardHandler), func(context.Context) { led = true })
		cancel()
		if err == nil || led {
			t.Errorf("%+v: err = %v, led = %t; want a refusal", cfg, err, led)
		}
	}
}
