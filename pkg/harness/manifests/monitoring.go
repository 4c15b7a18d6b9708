package manifests

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/stateguard/stateguard/pkg/harness/kubetest"
)

// MonitoringDir is deploy/kustomize/base/monitoring: the PrometheusRule and
// its promtool unit tests (tests/*.yaml).
func MonitoringDir() (string, error) {
	root, err := kubetest.RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "deploy", "kustomize", "base", "monitoring"), nil
}

// DashboardPath is the Grafana dashboard stateguard ships.
func DashboardPath() (string, error) {
	root, err := kubetest.RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "deploy", "grafana", "stateguard.json"), nil
}

// RuleFile turns a rendered PrometheusRule into a Prometheus rule file (its
// spec.groups), as the Prometheus Operator hands it to Prometheus.
func RuleFile(o *unstructured.Unstructured) ([]byte, error) {
	groups, ok, err := unstructured.NestedSlice(o.Object, "spec", "groups")
	if err != nil {
		return nil, fmt.Errorf("PrometheusRule %s: spec.groups: %w", o.GetName(), err)
	}
	if !ok || len(groups) == 0 {
		return nil, fmt.Errorf("PrometheusRule %s: no spec.groups", o.GetName())
	}
	return yaml.Marshal(map[string]any{"groups": groups})
}

// Dashboard is the part of a Grafana dashboard JSON model that Grafana
// needs to load it and that stateguard's checks read.
type Dashboard struct {
	UID           string `json:"uid"`
	Title         string `json:"title"`
	SchemaVersion int    `json:"schemaVersion"`
	Templating    struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []Panel `json:"panels"`
}

// Panel is a dashboard panel.
type Panel struct {
	ID         int            `json:"id"`
	Title      string         `json:"title"`
	Type       string         `json:"type"`
	Datasource *Datasource    `json:"datasource"`
	GridPos    map[string]int `json:"gridPos"`
	Targets    []Target       `json:"targets"`
}

// Datasource references a data source, here the datasource variable.
type Datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// Target is a panel's query.
type Target struct {
	RefID      string      `json:"refId"`
	Expr       string      `json:"expr"`
	Datasource *Datasource `json:"datasource"`
}

// ReadDashboard decodes the dashboard at path (an error for invalid JSON
// or a field of the wrong shape, such as panels that are not a list).
func ReadDashboard(path string) (*Dashboard, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var d Dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, fmt.Errorf("dashboard %s: %w", path, err)
	}
	return &d, nil
}

// Exprs are the dashboard's queries.
func (d *Dashboard) Exprs() []string {
	var out []string
	for _, p := range d.Panels {
		for _, t := range p.Targets {
			out = append(out, t.Expr)
		}
	}
	return out
}

// RuleExprs are the expressions of a rule file's alerting and recording
// rules.
func RuleExprs(ruleFile []byte) ([]string, error) {
	var f struct {
		Groups []struct {
			Rules []struct {
				Expr string `json:"expr"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := yaml.Unmarshal(ruleFile, &f); err != nil {
		return nil, err
	}
	var out []string
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			out = append(out, r.Expr)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("rule file has no rules")
	}
	return out, nil
}

// metricNameRE finds stateguard's metric names in PromQL: every metric of
// every service carries the stateguard_ prefix, and no label or function
// does.
var metricNameRE = regexp.MustCompile(`\bstateguard_[a-zA-Z0-9_]+`)

// MetricNames are the stateguard metric names the expressions read, sorted
// and without duplicates (histograms as their _bucket, _sum or _count
// series, as scraped).
func MetricNames(exprs []string) []string {
	var out []string
	for _, e := range exprs {
		out = append(out, metricNameRE.FindAllString(e, -1)...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// MonitoredMetrics are the metric names that the shipped dashboard and the
// given rule file read.
func MonitoredMetrics(ruleFile []byte) ([]string, error) {
	path, err := DashboardPath()
	if err != nil {
		return nil, err
	}
	d, err := ReadDashboard(path)
	if err != nil {
		return nil, err
	}
	exprs, err := RuleExprs(ruleFile)
	if err != nil {
		return nil, err
	}
	return MetricNames(append(d.Exprs(), exprs...)), nil
}
