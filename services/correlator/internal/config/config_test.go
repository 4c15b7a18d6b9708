package config

import (
	"io"
	"io/fs"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stateguard/stateguard/services/correlator/internal/model"
)

func TestLoad(t *testing.T) {
	files := map[string]string{
		"rules.yaml": "threshold: critical\nunknown_is_clean: true\nkeep_known_good: 2\nrotation_threshold: 10d\nsecret_cwes: [CWE-798]\n",
		"bad.yaml":   "threshold: severe\n",
		"typo.yaml":  "treshold: high\n",
	}
	read := func(name string) ([]byte, error) {
		if s, ok := files[name]; ok {
			return []byte(s), nil
		}
		return nil, fs.ErrNotExist
	}
	want := model.DefaultRules()
	want.Threshold, want.UnknownIsClean, want.KeepKnownGood, want.RotationThreshold, want.SecretCWEs = model.SeverityCritical, true, 2, 10*24*time.Hour, []string{"CWE-798"}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    model.Rules
		workers int
		err     bool
	}{
		{name: "defaults", want: model.DefaultRules(), workers: 512},
		{name: "rules file from the flag", args: []string{"--config", "rules.yaml", "--workers", "2"}, want: want, workers: 2},
		{name: "rules file from the environment", env: map[string]string{"CORRELATOR_CONFIG": "rules.yaml"}, want: want, workers: 512},
		{name: "an unknown severity is refused", args: []string{"--config", "bad.yaml"}, err: true},
		{name: "an unknown field is refused", args: []string{"--config", "typo.yaml"}, err: true},
		{name: "a missing file is refused", args: []string{"--config", "nope.yaml"}, err: true},
		{name: "zero workers are refused", args: []string{"--workers", "0"}, err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(tt.args, func(k string) string { return tt.env[k] }, read, io.Discard)
			if (err != nil) != tt.err {
				t.Fatalf("Load() error = %v, want error %t", err, tt.err)
			}
			if err != nil {
				return
			}
			if diff := cmp.Diff(tt.want, c.Rules); diff != "" {
				t.Errorf("rules (-want +got):\n%s", diff)
			}
			if c.Workers != tt.workers {
				t.Errorf("workers = %d, want %d", c.Workers, tt.workers)
			}
		})
	}
}

func TestExampleConfigParses(t *testing.T) {
	c, err := Load([]string{"--config", "../../config.example.yaml"}, func(string) string { return "" }, os.ReadFile, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(model.DefaultRules(), c.Rules); diff != "" {
		t.Errorf("the example should spell out the defaults (-want +got):\n%s", diff)
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"7d": 7 * 24 * time.Hour, "36h": 36 * time.Hour} {
		got, err := ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %s, %v; want %s", in, got, err, want)
		}
	}
	if _, err := ParseDuration("xd"); err == nil {
		t.Error("ParseDuration(xd) accepted")
	}
}

func TestCacheNamespaces(t *testing.T) {
	env := func(k string) string {
		if k == "CACHE_NAMESPACES" {
			return "100"
		}
		return ""
	}
	c, err := Load(nil, env, os.ReadFile, io.Discard)
	if err != nil || c.CacheNamespaces != 100 {
		t.Errorf("CACHE_NAMESPACES=100: cache %d, %v", c.CacheNamespaces, err)
	}
	if _, err := Load([]string{"--cache-namespaces", "0"}, func(string) string { return "" }, os.ReadFile, io.Discard); err == nil {
		t.Error("--cache-namespaces 0 accepted")
	}
}

// TestOperatorTokensNeedTheAPI: operator tokens without read tokens are
// refused (the API would be off); with both, both paths are kept.
func TestOperatorTokensNeedTheAPI(t *testing.T) {
	none := func(string) string { return "" }
	if _, err := Load([]string{"--api-operator-tokens-file", "/ops"}, none, nil, io.Discard); err == nil || !strings.Contains(err.Error(), "needs --api-tokens-file") {
		t.Errorf("operator tokens alone: %v, want a refusal naming --api-tokens-file", err)
	}
	c, err := Load(nil, func(k string) string {
		return map[string]string{"API_TOKENS_FILE": "/read", "API_OPERATOR_TOKENS_FILE": "/ops"}[k]
	}, nil, io.Discard)
	if err != nil || c.TokensFile != "/read" || c.OperatorTokensFile != "/ops" {
		t.Errorf("both from the environment: %+v, %v", c, err)
	}
}

func TestRulesFileRepositories(t *testing.T) {
	r, err := ParseRules([]byte("repositories:\n  https://github.com/Acme/Shop.git:\n    - {namespace: shop, app: shop-api, category: CodeQL}\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]model.RepoTarget{"acme/shop": {{Namespace: "shop", App: "shop-api", Category: "CodeQL", Source: model.SourceRules}}}
	if diff := cmp.Diff(want, r.Repositories); diff != "" {
		t.Errorf("repositories (-want +got):\n%s", diff)
	}
	for _, bad := range []string{
		"repositories:\n  shop:\n    - {namespace: shop, app: a}\n",
		"repositories:\n  acme/shop:\n    - {namespace: Shop_1, app: a}\n",
		"repositories:\n  acme/shop:\n    - {namespace: shop}\n",
	} {
		if _, err := ParseRules([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
