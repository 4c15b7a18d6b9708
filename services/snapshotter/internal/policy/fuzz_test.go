package policy_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stateguard/stateguard/services/snapshotter/api/v1alpha1"
	"github.com/stateguard/stateguard/services/snapshotter/internal/hooks"
	"github.com/stateguard/stateguard/services/snapshotter/internal/policy"
)

// FuzzParseDurations feeds arbitrary duration strings to the fields of a
// SnapshotPolicy that carry one (spec.retention.maxAge, a hook's timeout).
// Parse returns a Spec or an *InvalidError naming the field; an accepted
// duration is never negative and is what time.ParseDuration reads; a hook
// without a timeout gets the default.
func FuzzParseDurations(f *testing.F) {
	for _, s := range []string{"", "0", "90s", "36h", "2160h30m", "1.5h", "-1h", "3 days", "9999999999h", "1e3s", "+5m", "2562047h47m16.854775807s", "2562047h47m16.854775808s", ".5s"} {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, maxAge, timeout string) {
		p := spec(func(s *v1alpha1.SnapshotPolicySpec) {
			s.Retention.MaxAge = v1alpha1.Duration(maxAge)
			s.Hooks.Pre = []v1alpha1.Hook{{Command: []string{"x"}, Timeout: v1alpha1.Duration(timeout)}}
		})
		sp, err := policy.Parse(p)
		if err != nil {
			var inv *policy.InvalidError
			if !errors.As(err, &inv) || inv.Field == "" || inv.Reason == "" {
				t.Fatalf("error %v is not an *InvalidError naming a field and a reason", err)
			}
			return
		}
		if want, _ := time.ParseDuration(maxAge); maxAge != "" && sp.Retention.MaxAge != want {
			t.Fatalf("maxAge %q read as %s, time.ParseDuration says %s", maxAge, sp.Retention.MaxAge, want)
		}
		if sp.Retention.MaxAge < 0 || len(sp.PreTimeouts) != 1 || sp.PreTimeouts[0] <= 0 {
			t.Fatalf("accepted a negative or missing duration: maxAge %s, timeouts %v", sp.Retention.MaxAge, sp.PreTimeouts)
		}
		if d, _ := time.ParseDuration(timeout); d == 0 && sp.PreTimeouts[0] != hooks.DefaultTimeout {
			t.Fatalf("timeout %q: %s, want the default %s", timeout, sp.PreTimeouts[0], hooks.DefaultTimeout)
		}
	})
}
