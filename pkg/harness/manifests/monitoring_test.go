package manifests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stateguard/stateguard/pkg/harness/kubetest"
)

// promtool finds bin/promtool or fails the test naming the command that
// builds it.
func promtool(t *testing.T) string {
	t.Helper()
	root, err := kubetest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(root, "bin", "promtool")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("bin/promtool missing: run `make tools` (or `bash hack/tools.sh promtool`; it builds promtool from the Go module proxy): %v", err)
	}
	return p
}

// ruleFile renders the overlay and returns its PrometheusRule as a
// Prometheus rule file.
func ruleFile(t *testing.T, overlay string) []byte {
	t.Helper()
	rules := OfKind(build(t, overlay), "PrometheusRule")
	if len(rules) != 1 {
		t.Fatalf("%s renders %d PrometheusRules, want 1", overlay, len(rules))
	}
	if rules[0].GetNamespace() != "stateguard" {
		t.Errorf("PrometheusRule in namespace %q, want stateguard", rules[0].GetNamespace())
	}
	data, err := RuleFile(rules[0])
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestAlertRulesPassPromtool checks the rendered alert rules with `promtool
// check rules` and runs their unit tests (tests/*.yaml: input series and
// the alerts expected from them) with `promtool test rules`.
func TestAlertRulesPassPromtool(t *testing.T) {
	bin := promtool(t)
	dir, err := MonitoringDir()
	if err != nil {
		t.Fatal(err)
	}
	tests, err := filepath.Glob(filepath.Join(dir, "tests", "*.yaml"))
	if err != nil || len(tests) == 0 {
		t.Fatalf("no rule tests in %s/tests (%v)", dir, err)
	}
	for _, overlay := range Overlays {
		t.Run(overlay, func(t *testing.T) {
			work := t.TempDir()
			if err := os.WriteFile(filepath.Join(work, "rules.yaml"), ruleFile(t, overlay), 0o600); err != nil {
				t.Fatal(err)
			}
			args := []string{"test", "rules"}
			for _, f := range tests {
				data, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(work, filepath.Base(f)), data, 0o600); err != nil {
					t.Fatal(err)
				}
				args = append(args, filepath.Base(f))
			}
			for _, a := range [][]string{{"check", "rules", "rules.yaml"}, args} {
				cmd := exec.CommandContext(t.Context(), bin, a...)
				cmd.Dir = work
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Errorf("promtool %s: %v\n%s", strings.Join(a, " "), err, out)
				}
			}
		})
	}
}

// TestRuleTestsCanFail shows `promtool test rules` is a real check here: a
// rule whose threshold moved makes the unit tests fail.
func TestRuleTestsCanFail(t *testing.T) {
	bin := promtool(t)
	dir, err := MonitoringDir()
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	broken := strings.Replace(string(ruleFile(t, "dev")), "stateguard_correlator_open_incidents) > 0", "stateguard_correlator_open_incidents) > 1", 1)
	if broken == string(ruleFile(t, "dev")) {
		t.Fatal("the open-incident rule was not found to break")
	}
	if err := os.WriteFile(filepath.Join(work, "rules.yaml"), []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "tests", "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "alerts.yaml"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), bin, "test", "rules", "alerts.yaml")
	cmd.Dir = work
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "StateguardIncidentOpen") {
		t.Errorf("promtool test rules passed a broken rule (err %v):\n%s", err, out)
	}
}

// TestDashboardLoads checks the Grafana dashboard has what Grafana needs to
// import it: valid JSON, a uid, a title and a schema version, a Prometheus
// datasource variable that every panel and target uses, and panels with a
// type, a position and at least one query.
func TestDashboardLoads(t *testing.T) {
	path, err := DashboardPath()
	if err != nil {
		t.Fatal(err)
	}
	d, err := ReadDashboard(path)
	if err != nil {
		t.Fatal(err)
	}
	if d.UID == "" || d.Title == "" || d.SchemaVersion < 36 {
		t.Errorf("uid %q, title %q, schemaVersion %d: want both set and a schema of Grafana 9 or later", d.UID, d.Title, d.SchemaVersion)
	}
	var dsVar string
	for _, v := range d.Templating.List {
		if v.Type == "datasource" && v.Query == "prometheus" {
			dsVar = "${" + v.Name + "}"
		}
	}
	if dsVar == "" {
		t.Fatal("no Prometheus datasource variable in templating.list")
	}
	if len(d.Panels) == 0 {
		t.Fatal("no panels")
	}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if p.Type == "" || p.Title == "" || p.GridPos["w"] == 0 || p.GridPos["h"] == 0 {
			t.Errorf("panel %d %q: type %q, gridPos %v", p.ID, p.Title, p.Type, p.GridPos)
		}
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.Datasource == nil || p.Datasource.UID != dsVar {
			t.Errorf("panel %q does not use the datasource variable %s", p.Title, dsVar)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no targets", p.Title)
		}
		for _, tg := range p.Targets {
			if tg.RefID == "" || tg.Expr == "" || tg.Datasource == nil || tg.Datasource.UID != dsVar {
				t.Errorf("panel %q: target %+v needs a refId, an expr and the datasource variable", p.Title, tg)
			}
		}
	}
}

// TestMonitoredMetricsAreDocumented checks that every metric the dashboard
// and the alert rules read is listed in a service README's metric table
// (the e2e test checks they are exported by the running services).
func TestMonitoredMetricsAreDocumented(t *testing.T) {
	root, err := kubetest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	names, err := MonitoredMetrics(ruleFile(t, "prod"))
	if err != nil {
		t.Fatal(err)
	}
	var docs strings.Builder
	for _, f := range []string{"services/sastingest/README.md", "services/certwatcher/README.md", "services/snapshotter/README.md", "services/correlator/README.md", "pkg/events/metrics.go"} {
		data, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		docs.Write(data)
	}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_count"), "_sum")
		if !strings.Contains(docs.String(), base) {
			t.Errorf("%s is read by the dashboard or the rules but listed in no service README", base)
		}
	}
}
