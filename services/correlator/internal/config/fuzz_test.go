package config

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"

	"github.com/stateguard/stateguard/services/correlator/internal/model"
)

// FuzzParseRules feeds arbitrary rules files to ParseRules. Accepted rules
// validate, and written back as a rules file they parse to the same rules
// (nothing of an accepted file is read differently the second time); a
// duration in days is the whole number of days written, never a value that
// wrapped around.
//
// Run it long with a short minimisation time:
//
//	go test -run '^$' -fuzz '^FuzzParseRules$' -fuzztime 10m -fuzzminimizetime 1s ./internal/config/
//
// YAML gives new coverage often, and the fuzzer minimises each new input
// for up to -fuzzminimizetime (60s by default) before it counts another
// execution: with the default the run sat at "execs: 16 (0/sec)" for the
// whole of a 30-90s run, which looked like a hang. It is not one: a
// SIGQUIT to the worker then reports "hung or terminated unexpectedly while
// minimizing", the same target without coverage instrumentation (no
// minimising) ran 637,716 inputs in 21s, and with -fuzzminimizetime 1s it
// ran 57,985 with 179 new inputs in 60s at load 40.
func FuzzParseRules(f *testing.F) {
	_, file, _, _ := runtime.Caller(0)
	if ex, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "config.example.yaml")); err == nil {
		f.Add(ex)
	}
	for _, s := range []string{
		"threshold: critical\nunknown_is_clean: true\nkeep_known_good: 2\nrotation_threshold: 10d\nsecret_cwes: [CWE-798]\n",
		`{"threshold":"low","history":5,"renewal_margin":"0s"}`,
		"rotation_threshold: 106752d\n", "rotation_threshold: 213504d\n", "rotation_threshold: -1d\n", "renewal_margin: 1.5h\n",
		"threshold: severe\n", "treshold: high\n", "history: 0\n", "keep_known_good: 99999999999999999999\n",
		"secret_tags: &a [x, *a]\n", "a: &a [*a, *a, *a]\n", "---\n---\n", "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseRules(data)
		if err != nil {
			return
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("accepted rules that do not validate: %v", err)
		}
		checkDays(t, data, r)
		again, err := ParseRules(rulesFile(t, r))
		if err != nil {
			t.Fatalf("rules written back do not parse: %v", err)
		}
		if diff := cmp.Diff(r, again); diff != "" {
			t.Fatalf("rules written back parse differently (-first +again)\n%s", diff)
		}
	})
}

// rulesFile writes r as a rules file.
func rulesFile(t *testing.T, r model.Rules) []byte {
	t.Helper()
	th, rt, rm := r.Threshold.String(), r.RotationThreshold.String(), r.RenewalMargin.String()
	b, err := yaml.Marshal(File{
		Threshold: &th, UnknownIsClean: &r.UnknownIsClean, KeepKnownGood: &r.KeepKnownGood,
		SecretCWEs: &r.SecretCWEs, SecretRules: &r.SecretRules, SecretTags: &r.SecretTags,
		RotationThreshold: &rt, RenewalMargin: &rm, History: &r.History,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkDays checks a rotation_threshold or renewal_margin written in days
// was read as that many days.
func checkDays(t *testing.T, data []byte, r model.Rules) {
	t.Helper()
	var f File
	if yaml.Unmarshal(data, &f) != nil {
		return
	}
	for _, c := range []struct {
		s   *string
		got time.Duration
	}{{f.RotationThreshold, r.RotationThreshold}, {f.RenewalMargin, r.RenewalMargin}} {
		if c.s == nil {
			continue
		}
		d, ok := strings.CutSuffix(strings.TrimSpace(*c.s), "d")
		n, err := strconv.ParseInt(d, 10, 64)
		if !ok || err != nil {
			continue
		}
		if c.got/(24*time.Hour) != time.Duration(n) || c.got%(24*time.Hour) != 0 {
			t.Fatalf("%q read as %s: not %d days", *c.s, c.got, n)
		}
	}
}
