package sarif_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stateguard/stateguard/services/sastingest/internal/sarif"
)

// adversarialSize is the size of each adversarial log.
const adversarialSize = 4 << 20

// shape is a hostile log: a document of about n bytes built to make a
// parser do more than linear work (issue #18, finding 4).
type shape struct {
	name string
	doc  func(n int) []byte
}

const (
	logHead = `{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"t"}},"results":[`
	logTail = `]}]}`
)

// repeatTo repeats unit to about n bytes.
func repeatTo(unit string, n int) string { return strings.Repeat(unit, max(1, n/len(unit))) }

// plainShape is the baseline: one result whose message is n bytes of plain
// text.
var plainShape = shape{"plain text", func(n int) []byte {
	return []byte(logHead + `{"ruleId":"r","message":{"text":"` + repeatTo("A", n) + `"}}` + logTail)
}}

var adversarialShapes = []shape{
	{"escape-heavy object key", func(n int) []byte {
		return []byte(logHead + `{"` + repeatTo(`\u0041`, n) + `":1,"ruleId":"r"}` + logTail)
	}},
	{"escape-heavy message", func(n int) []byte {
		return []byte(logHead + `{"ruleId":"r","message":{"text":"` + repeatTo(`\u0041`, n) + `"}}` + logTail)
	}},
	{"escape-heavy rule id", func(n int) []byte {
		return []byte(logHead + `{"ruleId":"` + repeatTo(`\u00e9`, n) + `"}` + logTail)
	}},
	{"escape-heavy skipped member", func(n int) []byte {
		return []byte(`{"version":"2.1.0","x":"` + repeatTo(`\n\"\\`, n) + `","runs":[]}`)
	}},
	{"deep nesting in results", func(n int) []byte {
		unit := `{"ruleId":"r","properties":{"x":` + strings.Repeat("[", 500) + strings.Repeat("]", 500) + `}},`
		s := repeatTo(unit, n)
		return []byte(logHead + s[:len(s)-1] + logTail)
	}},
	{"huge number", func(n int) []byte {
		return []byte(logHead + `{"ruleId":"r","locations":[{"physicalLocation":{"region":{"startLine":` + repeatTo("9", n) + `}}}]}` + logTail)
	}},
	{"many tiny results", func(n int) []byte {
		s := repeatTo(`{},`, n)
		return []byte(logHead + s[:len(s)-1] + logTail)
	}},
	{"white space padding", func(n int) []byte {
		return []byte(`{"version":"2.1.0",` + repeatTo(" \n\t", n) + `"runs":[]}`)
	}},
}

// TestAdversarialShapesParse checks every hostile shape parses, and that
// what a shape puts into the summary and the findings stays within the
// bounds an event can carry.
func TestAdversarialShapesParse(t *testing.T) {
	for _, s := range append([]shape{plainShape}, adversarialShapes...) {
		t.Run(s.name, func(t *testing.T) {
			sum, err := sarif.Parse(bytes.NewReader(s.doc(1<<20)), func(f *sarif.Finding) error {
				if len(f.RuleID) > sarif.MaxRuleIDBytes || len(f.File) > sarif.MaxFileBytes || len(f.CWEs) > sarif.MaxCWEs {
					t.Errorf("finding over its bounds: rule id %d bytes, file %d bytes, %d CWEs", len(f.RuleID), len(f.File), len(f.CWEs))
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range sum.AnomalyList {
				if len(a.Path) > 300 || len(a.Reason) > 300 {
					t.Errorf("anomaly of %d+%d bytes: %.80s…", len(a.Path), len(a.Reason), a.Reason)
				}
			}
		})
	}
}

// BenchmarkAdversarialShapes parses each hostile shape and a plain log of
// the same size in the same run, and reports the shape's throughput as a
// ratio of the plain log's (vs-plain: 1 is as fast, 0.33 three times
// slower). Before the fix of issue #18 an escape-heavy key of 4 MiB took
// seconds: a ratio near 0.001.
func BenchmarkAdversarialShapes(b *testing.B) {
	for _, s := range adversarialShapes {
		b.Run(s.name, func(b *testing.B) {
			doc := s.doc(adversarialSize)
			plain := plainShape.doc(len(doc) - len(plainShape.doc(0)))
			b.SetBytes(int64(len(doc)))
			var shapeSec, plainSec float64
			n := 0
			for b.Loop() {
				n++
				start := time.Now()
				if _, err := sarif.Parse(bytes.NewReader(plain), nil); err != nil {
					b.Fatal(err)
				}
				plainSec += time.Since(start).Seconds()
				start = time.Now()
				if _, err := sarif.Parse(bytes.NewReader(doc), nil); err != nil {
					b.Fatal(err)
				}
				shapeSec += time.Since(start).Seconds()
			}
			shapeMBps := float64(n*len(doc)) / shapeSec / 1e6
			plainMBps := float64(n*len(plain)) / plainSec / 1e6
			b.ReportMetric(shapeMBps, "shape-MB/s")
			b.ReportMetric(plainMBps, "plain-MB/s")
			b.ReportMetric(shapeMBps/plainMBps, "vs-plain")
		})
	}
}

// FuzzParse feeds arbitrary documents to the parser: it must return a
// summary or an error, never panic, and keep every finding and anomaly
// within its bounds. The seeds are the hostile shapes, small.
func FuzzParse(f *testing.F) {
	for _, s := range append([]shape{plainShape}, adversarialShapes...) {
		f.Add(s.doc(64))
	}
	f.Add([]byte(`{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"CodeQL","rules":[{"id":"js/xss","properties":{"security-severity":"9.1","tags":["external/cwe/cwe-079"]}}]}},` +
		`"results":[{"ruleId":"js/xss","ruleIndex":0,"level":"error","message":{"text":"m"},"partialFingerprints":{"a":"b"},` +
		`"locations":[{"physicalLocation":{"artifactLocation":{"uri":"a.js"},"region":{"startLine":3,"snippet":{"text":"x"}}}}]}]}]}`))
	f.Add([]byte(`{"runs":[{"results":[{"ruleId":"G101"}],"tool":{"driver":{"name":"gosec"}}}],"version":"2.1.0"}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		sum, err := sarif.Parse(bytes.NewReader(doc), func(fd *sarif.Finding) error {
			if len(fd.RuleID) > sarif.MaxRuleIDBytes || len(fd.File) > sarif.MaxFileBytes || len(fd.CWEs) > sarif.MaxCWEs {
				t.Fatalf("finding over its bounds: %d, %d, %d", len(fd.RuleID), len(fd.File), len(fd.CWEs))
			}
			return nil
		}, sarif.WithSpoolDir(t.TempDir()))
		if err != nil {
			var serr *sarif.Error
			if !errors.As(err, &serr) {
				t.Fatalf("an error that is not a *sarif.Error: %v", err)
			}
			return
		}
		if len(sum.Tools) > sarif.MaxTools+1 || len(sum.AnomalyList) > sarif.MaxAnomalies {
			t.Fatalf("summary over its bounds: %d tools, %d anomalies", len(sum.Tools), len(sum.AnomalyList))
		}
	})
}

// FuzzLogProperty reads a log's property as the webhook does: a value or
// an *Error, never a panic, and never a value over the limit.
func FuzzLogProperty(f *testing.F) {
	f.Add([]byte(`{"version":"2.1.0","runs":[],"properties":{"stateguard.io/upload":{"repository":"acme/shop"}}}`))
	f.Add([]byte(`{"properties":{"x":1},"runs":[{"results":[{}]}],"properties":{"stateguard.io/upload":"` + strings.Repeat(`\u0041`, 40) + `"}}`))
	f.Add([]byte(`[1,2]`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		v, err := sarif.LogProperty(bytes.NewReader(doc), "stateguard.io/upload", 1024)
		if err != nil {
			var serr *sarif.Error
			if !errors.As(err, &serr) {
				t.Fatalf("an error that is not a *sarif.Error: %v", err)
			}
			return
		}
		if len(v) > 1024 {
			t.Fatalf("a value of %d bytes over the limit", len(v))
		}
	})
}
