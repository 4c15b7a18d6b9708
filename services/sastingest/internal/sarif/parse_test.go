package sarif_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/sastingest/internal/sarif"
)

func parseAll(t *testing.T, doc string) (*sarif.Summary, []sarif.Finding, error) {
	t.Helper()
	var got []sarif.Finding
	sum, err := sarif.Parse(strings.NewReader(doc), func(f *sarif.Finding) error {
		c := *f
		c.Fingerprint = 0
		got = append(got, c)
		return nil
	})
	return sum, got, err
}

func TestParseNormalises(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []sarif.Finding
	}{
		{
			name: "a missing level falls back to the rule's defaultConfiguration, and security-severity as a string is banded",
			doc: `{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"CodeQL","semanticVersion":"2.19.3","rules":[
				{"id":"js/xss","defaultConfiguration":{"level":"error"},"properties":{"security-severity":"9.1","tags":["security","external/cwe/cwe-079"]}}]}},
				"results":[{"ruleId":"js/xss","ruleIndex":0,"locations":[{"physicalLocation":{"artifactLocation":{"uri":"src/a.js","uriBaseId":"%SRCROOT%"},"region":{"startLine":7}}}]}]}]}`,
			want: []sarif.Finding{{Tool: "CodeQL", RuleID: "js/xss", Severity: "critical", Level: "error", CWEs: []string{"CWE-79"}, File: "src/a.js", Line: 7}},
		},
		{
			name: "no level and no rule default is a warning; no security-severity is none",
			doc:  `{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"semgrep"}},"results":[{"ruleId":"r1","message":{"text":"m"}}]}]}`,
			want: []sarif.Finding{{Tool: "semgrep", RuleID: "r1", Severity: "none", Level: "warning"}},
		},
		{
			name: "rules under tool.extensions are found through rule.toolComponent",
			doc: `{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"CodeQL"},"extensions":[{"name":"other","rules":[]},{"name":"codeql/java-queries","rules":[
				{"id":"java/sqli","defaultConfiguration":{"level":"note"},"properties":{"security-severity":7.5,"tags":["CWE-89: SQL injection"]}}]}]},
				"results":[{"rule":{"id":"java/sqli","index":0,"toolComponent":{"index":1}},"locations":[]}]}]}`,
			want: []sarif.Finding{{Tool: "CodeQL", RuleID: "java/sqli", Severity: "high", Level: "note", CWEs: []string{"CWE-89"}}},
		},
		{
			name: "results before the tool (gosec) still find their rules; CWE from relationships",
			doc: "\xef\xbb\xbf" + `{"runs":[{"results":[{"ruleId":"G101","level":"error"}],"tool":{"driver":{"name":"gosec","version":"2.30.0","rules":[
				{"id":"G101","relationships":[null,{"target":{"id":"798","toolComponent":{"name":"CWE"}}}],"properties":{"security-severity":"5.0"}}]}}}],"version":"2.1.0"}`,
			want: []sarif.Finding{{Tool: "gosec", RuleID: "G101", Severity: "medium", Level: "error", CWEs: []string{"CWE-798"}}},
		},
		{
			name: "a kind other than fail without a level is level none; low band",
			doc:  `{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"t"}},"results":[{"ruleId":"x","kind":"pass","properties":{"security-severity":"0.1"}}]}]}`,
			want: []sarif.Finding{{Tool: "t", RuleID: "x", Severity: "low", Level: "none"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, got, err := parseAll(t, tt.doc)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("findings (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseCountsMalformedResults(t *testing.T) {
	doc := `{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"msvc"}},"results":[
		{"ruleId":"C1","level":"error","locations":[{"physicalLocation":{"artifactLocation":{"uri":"a.c"},"region":{"startLine":3,"startColumn":18446744073709551615}}}]},
		{"ruleId":"S1","properties":{"tags":["security",{"name":"odd"}]}},
		null,
		{"ruleId":"ok"}]},
		{"tool":{"driver":{"name":"second"}}}]}`
	sum, got, err := parseAll(t, doc)
	if err != nil {
		t.Fatal(err)
	}
	if sum.ResultsTotal != 4 || len(got) != 4 {
		t.Fatalf("results = %d (%d findings), want 4", sum.ResultsTotal, len(got))
	}
	if got[0].Line != 3 || got[0].File != "a.c" {
		t.Errorf("first result lost its location: %+v", got[0])
	}
	wantPaths := []string{
		"$.runs[0].results[0].locations[0].physicalLocation.region.startColumn",
		"$.runs[0].results[1].properties.tags[1]",
		"$.runs[0].results[2]",
	}
	var paths []string
	for _, a := range sum.AnomalyList {
		paths = append(paths, a.Path)
	}
	if diff := cmp.Diff(wantPaths, paths); diff != "" {
		t.Errorf("anomalies (-want +got):\n%s", diff)
	}
	wantTools := []events.Tool{{Name: "msvc"}, {Name: "second"}}
	if diff := cmp.Diff(wantTools, sum.Tools); diff != "" {
		t.Errorf("tools (-want +got):\n%s", diff)
	}
	if sum.ByLevel.Error != 1 || sum.ByLevel.Warning != 3 {
		t.Errorf("by level = %+v", sum.ByLevel)
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name, doc, path string
	}{
		{"plain text", "Passed checks: 3, Failed checks: 1", "$"},
		{"a JSON array", `[1,2]`, "$"},
		{"empty body", ``, "$"},
		{"wrong version", `{"version":"2.0.0","runs":[]}`, "$.version"},
		{"version not a string", `{"version":2.1,"runs":[]}`, "$.version"},
		{"no version", `{"runs":[]}`, "$.version"},
		{"no runs", `{"version":"2.1.0"}`, "$.runs"},
		{"runs null", `{"version":"2.1.0","runs":null}`, "$.runs"},
		{"results a number", `{"version":"2.1.0","runs":[{"results":3}]}`, "$.runs[0].results"},
		{"run not an object", `{"version":"2.1.0","runs":[7]}`, "$.runs[0]"},
		{"truncated", `{"version":"2.1.0","runs":[{"results":[{"ruleId":"a"`, "$.runs[0].results[0]"},
		{"syntax error inside a result", `{"version":"2.1.0","runs":[{"results":[{"ruleId":"a",}]}]}`, "$.runs[0].results[0]"},
		{"trailing data", `{"version":"2.1.0","runs":[]} {}`, "$"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sarif.Parse(strings.NewReader(tt.doc), nil)
			var perr *sarif.Error
			if !errors.As(err, &perr) {
				t.Fatalf("err = %v, want *sarif.Error", err)
			}
			if perr.Path != tt.path || perr.Reason == "" {
				t.Errorf("error = %q at %q, want a reason at %q", perr.Reason, perr.Path, tt.path)
			}
		})
	}
}

func TestSeverityBands(t *testing.T) {
	for score, want := range map[float64]string{10: "critical", 9.0: "critical", 8.9: "high", 7.0: "high", 6.9: "medium", 4.0: "medium", 3.9: "low", 0.1: "low", 0.0: "none", -1: "none"} {
		if got := sarif.SeverityOf(score); got != want {
			t.Errorf("SeverityOf(%v) = %s, want %s", score, got, want)
		}
	}
}

func TestFingerprintStable(t *testing.T) {
	doc := `{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"t"}},"results":[
		{"ruleId":"a","partialFingerprints":{"h":"1","g":"2"}},
		{"ruleId":"a","partialFingerprints":{"g":"2","h":"1"}},
		{"ruleId":"a","locations":[{"physicalLocation":{"artifactLocation":{"uri":"x"},"region":{"startLine":1,"snippet":{"text":"s"}}}}]},
		{"ruleId":"a","locations":[{"physicalLocation":{"artifactLocation":{"uri":"x"},"region":{"startLine":9,"snippet":{"text":"s"}}}}]},
		{"ruleId":"b","locations":[{"physicalLocation":{"artifactLocation":{"uri":"x"},"region":{"startLine":9,"snippet":{"text":"s"}}}}]}]}]}`
	var fps []sarif.Fingerprint
	if _, err := sarif.Parse(strings.NewReader(doc), func(f *sarif.Finding) error { fps = append(fps, f.Fingerprint); return nil }); err != nil {
		t.Fatal(err)
	}
	if fps[0] != fps[1] || fps[2] != fps[3] || fps[3] == fps[4] || fps[0] == fps[2] {
		t.Errorf("fingerprints = %v: want equal for the same partialFingerprints and snippet, different by rule", fps)
	}
	s := fps[0].String()
	if back, ok := sarif.ParseFingerprint(s); !ok || back != fps[0] || len(s) != 16 {
		t.Errorf("fingerprint %q does not round-trip", s)
	}
}

// Results before the tool, more than the backlog keeps in memory: every
// one is counted and resolved against its rule, in order.
func TestParseManyResultsBeforeTool(t *testing.T) {
	const n = 40_000
	var b strings.Builder
	b.WriteString(`{"version":"2.1.0","runs":[{"results":[`)
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		rule := []string{"A", "B"}[i%2]
		b.WriteString(`{"ruleId":"` + rule + `","locations":[{"physicalLocation":{"artifactLocation":{"uri":"f.go"},"region":{"startLine":` + strconv.Itoa(i+1) + `}}}]}`)
	}
	b.WriteString(`],"tool":{"driver":{"name":"gosec","rules":[{"id":"A","defaultConfiguration":{"level":"error"},"properties":{"security-severity":"9.5"}},` +
		`{"id":"B","properties":{"tags":["CWE-22"]}}]}}}]}`)
	line := 0
	sum, err := sarif.Parse(strings.NewReader(b.String()), func(f *sarif.Finding) error {
		line++
		if f.Line != line {
			return fmt.Errorf("finding %d has line %d: out of order", line, f.Line)
		}
		want := sarif.Finding{Tool: "gosec", RuleID: "A", Severity: "critical", Level: "error", File: "f.go", Line: line, Fingerprint: f.Fingerprint}
		if line%2 == 0 {
			want = sarif.Finding{Tool: "gosec", RuleID: "B", Severity: "none", Level: "warning", CWEs: []string{"CWE-22"}, File: "f.go", Line: line, Fingerprint: f.Fingerprint}
		}
		if diff := cmp.Diff(want, *f); diff != "" {
			return fmt.Errorf("finding %d (-want +got):\n%s", line, diff)
		}
		return nil
	}, sarif.WithSpoolDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	if sum.ResultsTotal != n || sum.BySeverity.Critical != n/2 || sum.ByLevel.Error != n/2 {
		t.Errorf("summary = %+v", sum)
	}
}

// gosec writes no security-severity; its rules say HIGH or MEDIUM in a tag.
// The findings of the project's own gosec test data get those bands.
func TestSeverityFromTagsWithoutSecuritySeverity(t *testing.T) {
	f, err := os.Open(filepath.Join("..", "..", "testdata", "gosec-sampleapp.sarif"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	byRule := map[string]string{}
	sum, err := sarif.Parse(f, func(fd *sarif.Finding) error {
		byRule[fd.RuleID] = fd.Severity
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for rule, want := range map[string]string{"G101": sarif.SeverityHigh, "G402": sarif.SeverityHigh, "G401": sarif.SeverityMedium, "G204": sarif.SeverityMedium} {
		if got := byRule[rule]; got != want {
			t.Errorf("%s: severity %q, want %q (from its tag)", rule, got, want)
		}
	}
	if sum.BySeverity.None != 0 || sum.BySeverity.High == 0 {
		t.Errorf("by severity %+v: every gosec rule has a severity tag", sum.BySeverity)
	}
}

func TestSecuritySeverityWinsOverATag(t *testing.T) {
	log := `{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"x","rules":[{"id":"R1","properties":{"tags":["LOW"],"security-severity":"9.5"}}]}},"results":[{"ruleId":"R1","message":{"text":"m"}}]}]}`
	var got string
	if _, err := sarif.Parse(strings.NewReader(log), func(fd *sarif.Finding) error { got = fd.Severity; return nil }); err != nil {
		t.Fatal(err)
	}
	if got != sarif.SeverityCritical {
		t.Errorf("severity %q, want critical from security-severity 9.5", got)
	}
}
