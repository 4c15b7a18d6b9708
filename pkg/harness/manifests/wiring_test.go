package manifests

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/stateguard/stateguard/pkg/harness/kubetest"
)

// standardEnv are variables read by libraries or the Go runtime rather than
// by a stateguard flag.
var standardEnv = []string{"OTEL_SERVICE_NAME", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_TRACES_EXPORTER", "GOMEMLIMIT"}

// sourceText returns the non-test Go source of the given directories under
// the repository root, concatenated.
func sourceText(t *testing.T, dirs ...string) string {
	t.Helper()
	root, err := kubetest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, d := range dirs {
		err := filepath.WalkDir(filepath.Join(root, d), func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if e.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
				return nil
			}
			data, err := os.ReadFile(p)
			b.Write(data)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

var flagArg = regexp.MustCompile(`^--([a-z0-9-]+)=`)

// shared are the modules every service's flags and environment come from
// besides its own code: the contract's transport and the process runtime.
var shared = []string{"pkg/events", "pkg/runtime"}

// checkWiring fails when a service is given an environment variable or a
// flag that neither its own code nor the shared modules define: a renamed
// flag would otherwise be ignored silently (env) or stop the service (flag).
func checkWiring(t *testing.T, where, service string, env []string, args []string) {
	t.Helper()
	src := sourceText(t, append([]string{filepath.Join("services", service)}, shared...)...)
	for _, e := range env {
		if slices.Contains(standardEnv, e) {
			continue
		}
		if !strings.Contains(src, `"`+e+`"`) {
			t.Errorf("%s: %s gets environment variable %s, which neither services/%s nor %s reads", where, service, e, service, strings.Join(shared, " nor "))
		}
	}
	for _, a := range args {
		m := flagArg.FindStringSubmatch(a)
		if m == nil {
			t.Errorf("%s: %s argument %q is not --flag=value", where, service, a)
			continue
		}
		if !strings.Contains(src, `"`+m[1]+`"`) {
			t.Errorf("%s: %s gets flag --%s, which neither services/%s nor %s defines", where, service, m[1], service, strings.Join(shared, " nor "))
		}
	}
}

// TestManifestsMatchTheServicesFlags checks every environment variable and
// flag the overlays give a service against the service's code.
func TestManifestsMatchTheServicesFlags(t *testing.T) {
	for _, overlay := range Overlays {
		objs := build(t, overlay)
		common := convert[corev1.ConfigMap](t, generated(objs, "ConfigMap", "stateguard-common"))
		for _, s := range services {
			d := convert[appsv1.Deployment](t, Find(objs, "Deployment", s.name))
			c := d.Spec.Template.Spec.Containers[0]
			var env []string
			for _, e := range c.Env {
				env = append(env, e.Name)
			}
			checkWiring(t, overlay, s.name, env, c.Args)
		}
		// Each shared variable is read by a shared module or at least one
		// service.
		all := sourceText(t, append([]string{"services"}, shared...)...)
		for k := range common.Data {
			if !strings.Contains(all, `"`+k+`"`) {
				t.Errorf("%s: stateguard-common sets %s, which no service reads", overlay, k)
			}
		}
	}
}
