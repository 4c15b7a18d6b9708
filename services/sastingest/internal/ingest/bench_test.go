package ingest

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/stateguard/stateguard/pkg/harness/benchmemtest"
	"github.com/stateguard/stateguard/services/sastingest/internal/sarif"
)

// generatedLog writes a SARIF log of about size bytes to w: one run in
// CodeQL's shape (tool and rules first) with distinct results, produced as
// it is read and never held whole.
//
// With resultsFirst the results come before the tool, as gosec writes them.
func generatedLog(w io.Writer, size int64, resultsFirst bool) (int, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	var n int64
	wr := func(s string) { m, _ := bw.WriteString(s); n += int64(m) }
	tool := func() {
		wr(`"tool":{"driver":{"name":"CodeQL","semanticVersion":"2.19.3","rules":[`)
		for r := 0; r < 50; r++ {
			if r > 0 {
				wr(",")
			}
			wr(fmt.Sprintf(`{"id":"go/rule-%d","defaultConfiguration":{"level":"warning"},"properties":{"security-severity":"%d.%d","tags":["security","external/cwe/cwe-%03d"]}}`, r, r%10, r%7, 20+r))
		}
		wr(`]}}`)
	}
	wr(`{"version":"2.1.0","$schema":"https://json.schemastore.org/sarif-2.1.0.json","runs":[{`)
	if !resultsFirst {
		tool()
		wr(",")
	}
	wr(`"results":[`)
	results := 0
	for i := 0; n < size; i++ {
		if i > 0 {
			wr(",")
		}
		r := i % 50
		wr(`{"ruleId":"go/rule-` + strconv.Itoa(r) + `","ruleIndex":` + strconv.Itoa(r) +
			`,"message":{"text":"Untrusted data flows to a sensitive sink in handler ` + strconv.Itoa(i) + `."},` +
			`"locations":[{"physicalLocation":{"artifactLocation":{"uri":"pkg/service/handler_` + strconv.Itoa(i%997) + `.go","uriBaseId":"%SRCROOT%"},` +
			`"region":{"startLine":` + strconv.Itoa(10+i%5000) + `,"startColumn":5,"endColumn":42,"snippet":{"text":"db.Query(fmt.Sprintf(q, r.FormValue(\"id\")))"}}}}],` +
			`"partialFingerprints":{"primaryLocationLineHash":"` + strconv.FormatUint(uint64(i)*2654435761, 16) + `:1"}}`)
		results++
	}
	wr(`]`)
	if resultsFirst {
		wr(",")
		tool()
	}
	wr(`}]}`)
	return results, bw.Flush()
}

// BenchmarkIngest1GBGzipStream parses a 1 GB log sent gzipped, generated
// on the fly through an io.Pipe (never on disk or in memory), through the
// same parse and delta (every fingerprint kept, compared with a baseline,
// the next baseline streamed out) that Pipeline.Ingest runs, and reports
// the peak heap. The generator's own buffers count in the figure.
//
// The results-first case holds each result packed (40 bytes) until the tool
// arrives, so its heap grows with the number of results.
func BenchmarkIngest1GBGzipStream(b *testing.B) {
	b.Run("tool-first", func(b *testing.B) { bench1GB(b, false) })
	b.Run("results-first", func(b *testing.B) { bench1GB(b, true) })
}

func bench1GB(b *testing.B, resultsFirst bool) {
	const size = 1 << 30
	for i := 0; i < b.N; i++ {
		pr, pw := io.Pipe()
		var want int
		var compressed atomic.Int64
		go func() {
			zw, _ := gzip.NewWriterLevel(&countWriter{w: pw, n: &compressed}, gzip.BestSpeed)
			n, err := generatedLog(zw, size, resultsFirst)
			if err == nil {
				err = zw.Close()
			}
			want = n
			pw.CloseWithError(err)
		}()
		stop := benchmemtest.HeapPeak()
		start := time.Now()
		zr, err := gzip.NewReader(pr)
		if err != nil {
			b.Fatal(err)
		}
		d := newDelta(nil)
		sum, err := sarif.Parse(&limitReader{r: gzipErrReader{r: zr, raw: &rawReader{}}, limit: 4 << 30}, func(f *sarif.Finding) error { d.add(f); return nil })
		if err != nil {
			b.Fatal(err)
		}
		baseline, err := io.Copy(io.Discard, d.finish())
		sec := time.Since(start).Seconds()
		peak := stop()
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, zr)
		if sum.ResultsTotal != want || d.new != want {
			b.Fatalf("results %d, new %d, want %d", sum.ResultsTotal, d.new, want)
		}
		b.ReportMetric(float64(size)/1e6, "log-MB")
		b.ReportMetric(float64(compressed.Load())/1e6, "gzip-MB")
		b.ReportMetric(float64(want), "results")
		b.ReportMetric(float64(baseline)/1e6, "baseline-MB")
		b.ReportMetric(float64(size)/sec/1e6, "MB/s")
		b.ReportMetric(float64(peak)/1e6, "peak-heap-MB")
	}
}

type countWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}
