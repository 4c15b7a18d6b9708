package sarif_test

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stateguard/stateguard/pkg/harness/benchmemtest"
	"github.com/stateguard/stateguard/services/sastingest/internal/sarif"
)

// Fingerprints are the identity of findings across uploads: stored
// baselines hold them, so they must not change from one version of the
// parser to the next. These values were computed by the encoding/json
// parser that came before the jsontext walk.
func TestFingerprintsDoNotChange(t *testing.T) {
	doc := `{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"t","rules":[{"id":"r0"}]}},"results":[
	{"ruleId":"a","partialFingerprints":{"primaryLocationLineHash":"39fa2ee980eb94b0:1","b":"x"}},
	{"ruleId":"a","locations":[{"physicalLocation":{"artifactLocation":{"uri":"src/x.go"},"region":{"startLine":12,"snippet":{"text":"  db.Query(q)\n"}}}}]},
	{"ruleId":"a","message":{"text":"caf\u00e9 \"quoted\""},"locations":[{"physicalLocation":{"artifactLocation":{"uri":"src/y.go"},"region":{"startLine":7}}}]},
	{"ruleIndex":0,"message":{"text":"by index"}},
	{"message":{"text":"nothing"}}]}]}`
	want := []string{"ae11be423fe14295", "edbdf897682eec98", "49547bf7e1779865", "5d335e117dd93961", "b2d3e8c71d4d74be"}
	var got []string
	if _, err := sarif.Parse(strings.NewReader(doc), func(f *sarif.Finding) error {
		got = append(got, f.Fingerprint.String())
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("fingerprints (-want +got):\n%s", diff)
	}
}

// What encoding/json tolerated inside results and tools, and real tools
// rely on, is still accepted.
func TestParseIsLenientWhereEncodingJSONWas(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []sarif.Finding
	}{
		{
			name: "field names inside a result or tool in another case",
			doc:  `{"version":"2.1.0","runs":[{"tool":{"Driver":{"Name":"X","Rules":[{"ID":"a","Properties":{"Security-Severity":"9"}}]}},"results":[{"RuleID":"a","Locations":[{"PhysicalLocation":{"ArtifactLocation":{"URI":"f.go"},"Region":{"StartLine":5}}}]}]}]}`,
			want: []sarif.Finding{{Tool: "X", RuleID: "a", Severity: "critical", Level: "warning", File: "f.go", Line: 5}},
		},
		{
			name: "invalid UTF-8 is replaced, escapes are decoded",
			doc:  "{\"version\":\"2.1.0\",\"runs\":[{\"tool\":{\"driver\":{\"name\":\"bad\xffname\"}},\"results\":[{\"ruleId\":\"r\\u00e9\",\"locations\":[{\"physicalLocation\":{\"artifactLocation\":{\"uri\":\"d\xc3/\\ud83d\\ude00.go\"}}}]}]}]}",
			want: []sarif.Finding{{Tool: "bad\uFFFDname", RuleID: "ré", Severity: "none", Level: "warning", File: "d\uFFFD/😀.go"}},
		},
		{
			name: "a repeated name: the last one wins",
			doc:  `{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"d"}},"results":[{"ruleId":"a","ruleId":"b","level":"note","level":"error"}]}]}`,
			want: []sarif.Finding{{Tool: "d", RuleID: "b", Severity: "none", Level: "error"}},
		},
		{
			name: "security-severity as a number, cwe as a string and as a list with a stray number",
			doc: `{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"d","rules":[{"id":"a","properties":{"cwe":["CWE-1",2,"CWE-3"]}}]}},` +
				`"results":[{"ruleId":"a","properties":{"security-severity":7,"cwe":"CWE-89"}}]}]}`,
			want: []sarif.Finding{{Tool: "d", RuleID: "a", Severity: "high", Level: "warning", CWEs: []string{"CWE-89", "CWE-1", "CWE-3"}}},
		},
		{
			name: "null tool, null driver and null rules keep their places",
			doc: `{"version":"2.1.0","runs":[{"tool":null,"results":null},{"tool":{"driver":null,"extensions":[null,{"name":"e","rules":[null,{"id":"z","defaultConfiguration":{"level":"note"}}]}]},` +
				`"results":[{"rule":{"index":1,"toolComponent":{"index":1}}}]}]}`,
			want: []sarif.Finding{{Tool: "unknown", RuleID: "z", Severity: "none", Level: "note"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sum, got, err := parseAll(t, tt.doc)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("findings (-want +got):\n%s", diff)
			}
			if sum.Anomalies != 0 {
				t.Errorf("anomalies %v, want none", sum.AnomalyList)
			}
		})
	}
}

// Every malformed field of a result is listed, at its own path; the
// result counts.
func TestParseListsEveryMalformedField(t *testing.T) {
	doc := `{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"d","rules":[{"id":"a","defaultConfiguration":{"level":"bogus"},"properties":{"tags":"security"}}]}},"results":[
		{"ruleId":"a","ruleIndex":1.5,"message":"not an object","locations":[{"physicalLocation":{"region":{"startLine":"7"}}},{"physicalLocation":{"region":{"endColumn":-1e3}}}],"partialFingerprints":{"h":3},"properties":{"security-severity":1e400}},
		5,
		{"ruleId":"a","level":"critical"}]}]}`
	sum, got, err := parseAll(t, doc)
	if err != nil {
		t.Fatal(err)
	}
	if sum.ResultsTotal != 3 || len(got) != 3 {
		t.Fatalf("results %d (%d findings), want 3", sum.ResultsTotal, len(got))
	}
	want := []sarif.Anomaly{
		{Path: "$.runs[0].tool.driver.rules[0].defaultConfiguration.level", Reason: `level "bogus" is not error, warning, note or none`},
		{Path: "$.runs[0].tool.driver.rules[0].properties.tags", Reason: "a JSON string where an array was expected"},
		{Path: "$.runs[0].results[0].ruleIndex", Reason: "a JSON number 1.5 where int was expected"},
		{Path: "$.runs[0].results[0].message", Reason: "a JSON string where an object was expected"},
		{Path: "$.runs[0].results[0].locations[0].physicalLocation.region.startLine", Reason: "a JSON string where int was expected"},
		{Path: "$.runs[0].results[0].locations[1].physicalLocation.region.endColumn", Reason: "a JSON number -1e3 where int was expected"},
		{Path: "$.runs[0].results[0].partialFingerprints.h", Reason: "a JSON number 3 where a string was expected"},
		{Path: "$.runs[0].results[0].properties.security-severity", Reason: "a JSON number 1e400 where float64 was expected"},
		{Path: "$.runs[0].results[1]", Reason: "a JSON number 5 where an object was expected"},
		{Path: "$.runs[0].results[2].level", Reason: `level "critical" is not error, warning, note or none`},
	}
	if diff := cmp.Diff(want, sum.AnomalyList); diff != "" {
		t.Errorf("anomalies (-want +got):\n%s", diff)
	}
}

// An error of the reader (a size limit, a broken gzip stream) comes back as
// it is, not as a JSON error, wherever the parse is.
func TestParseReturnsTheReadersError(t *testing.T) {
	errLimit := errors.New("limit reached")
	for _, at := range []int{0, 5, 40, 60} {
		doc := `{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"d"}},"results":[{"ruleId":"a"}]}]}`
		r := io.MultiReader(strings.NewReader(doc[:at]), errorReader{errLimit})
		_, err := sarif.Parse(r, nil)
		if !errors.Is(err, errLimit) {
			t.Errorf("error after %d bytes: %v, want the reader's", at, err)
		}
		var perr *sarif.Error
		if errors.As(err, &perr) {
			t.Errorf("error after %d bytes is a *sarif.Error: %v", at, err)
		}
	}
}

type errorReader struct{ err error }

func (e errorReader) Read([]byte) (int, error) { return 0, e.err }

// White space between tokens is not kept: a log padded with 64 MB of it
// (a gzip bomb of spaces compresses 1000:1) parses in a small heap.
func TestParseWhiteSpacePaddingKeepsTheHeapSmall(t *testing.T) {
	const pad = 64 << 20
	doc := io.MultiReader(
		strings.NewReader(`{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"d"}},"results":[{"ruleId":"a"},`),
		io.LimitReader(spaces{}, pad),
		strings.NewReader(`{"ruleId":"b"}]}]}`),
	)
	stop := benchmemtest.HeapPeak()
	sum, err := sarif.Parse(doc, nil)
	peak := stop()
	if err != nil {
		t.Fatal(err)
	}
	if sum.ResultsTotal != 2 {
		t.Errorf("results %d, want 2", sum.ResultsTotal)
	}
	if peak > 16<<20 {
		t.Errorf("peak heap %d MB for %d MB of padding: the padding is being kept", peak>>20, pad>>20)
	}
}

type spaces struct{}

func (spaces) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = " \n\t"[i%3]
	}
	return len(p), nil
}
