package sarif_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	gosarif "github.com/owenrumney/go-sarif/v3/pkg/report/v210/sarif"

	"github.com/stateguard/stateguard/pkg/harness/benchmemtest"
	"github.com/stateguard/stateguard/services/sastingest/internal/sarif"
)

// benchRuns returns real runs to replicate: the project's gosec log and,
// when the shared corpus is there, every valid log that go-sarif's types
// unmarshal (so the baseline can read the merged log).
func benchRuns(b *testing.B) []json.RawMessage {
	b.Helper()
	_, file, _, _ := runtime.Caller(0)
	files := []string{filepath.Join(filepath.Dir(file), "..", "..", "testdata", "gosec-sampleapp.sarif")}
	dir := filepath.Dir(file)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			more, _ := filepath.Glob(filepath.Join(dir, "..", "shared", "sarif", "valid", "*", "*.sarif"))
			files = append(files, more...)
			break
		}
		if filepath.Dir(dir) == dir {
			break
		}
		dir = filepath.Dir(dir)
	}
	var runs []json.RawMessage
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
		var rep gosarif.Report
		if json.Unmarshal(data, &rep) != nil {
			continue
		}
		var doc struct{ Runs []json.RawMessage }
		if json.Unmarshal(data, &doc) != nil {
			continue
		}
		for _, r := range doc.Runs {
			var c bytes.Buffer
			_ = json.Compact(&c, r)
			runs = append(runs, c.Bytes())
		}
	}
	return runs
}

// writeMergedLog writes one SARIF log of at least size bytes whose runs are
// the real runs, repeated, and returns its results count.
func writeMergedLog(b *testing.B, path string, size int64) int {
	b.Helper()
	runs := benchRuns(b)
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	var n int64
	wr := func(p []byte) { m, _ := w.Write(p); n += int64(m) }
	wr([]byte(`{"$schema":"https://json.schemastore.org/sarif-2.1.0.json","version":"2.1.0","runs":[`))
	results := 0
	for i := 0; n < size; i++ {
		if i > 0 {
			wr([]byte(","))
		}
		r := runs[i%len(runs)]
		wr(r)
		var c struct{ Results []json.RawMessage }
		_ = json.Unmarshal(r, &c)
		results += len(c.Results)
	}
	wr([]byte("]}"))
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return results
}

// BenchmarkIngestVsUnmarshal parses a ≥100 MB log of real runs with the
// streaming parser (normalising every result and keeping its fingerprint,
// as ingest does) and with plain json.Unmarshal into go-sarif's types, in
// the same run, reading both from the same file.
func BenchmarkIngestVsUnmarshal(b *testing.B) {
	path := filepath.Join(b.TempDir(), "merged.sarif")
	want := writeMergedLog(b, path, 100<<20)
	fi, _ := os.Stat(path)
	size := float64(fi.Size())
	b.SetBytes(fi.Size())
	b.ResetTimer()
	var parseSec, unmarshalSec float64
	var parsePeak, unmarshalPeak uint64
	for i := 0; i < b.N; i++ {
		stop := benchmemtest.HeapPeak()
		start := time.Now()
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		var fps []sarif.Fingerprint
		sum, err := sarif.Parse(f, func(fd *sarif.Finding) error { fps = append(fps, fd.Fingerprint); return nil })
		_ = f.Close()
		parseSec += time.Since(start).Seconds()
		parsePeak = max(parsePeak, stop())
		if err != nil || sum.ResultsTotal != want {
			b.Fatalf("parse: %v, %d results, want %d", err, sum.ResultsTotal, want)
		}
		fps = nil

		stop = benchmemtest.HeapPeak()
		start = time.Now()
		data, err := os.ReadFile(path)
		if err != nil {
			b.Fatal(err)
		}
		var rep gosarif.Report
		if err := json.Unmarshal(data, &rep); err != nil {
			b.Fatal(err)
		}
		unmarshalSec += time.Since(start).Seconds()
		unmarshalPeak = max(unmarshalPeak, stop())
		runtime.KeepAlive(rep)
		runtime.KeepAlive(data)
	}
	n := float64(b.N)
	pt, ut := size/(parseSec/n)/1e6, size/(unmarshalSec/n)/1e6
	b.ReportMetric(size/1e6, "log-MB")
	b.ReportMetric(float64(want), "results")
	b.ReportMetric(pt, "ingest-MB/s")
	b.ReportMetric(ut, "unmarshal-MB/s")
	b.ReportMetric(pt/ut, "throughput-ratio")
	b.ReportMetric(float64(parsePeak)/1e6, "ingest-peak-heap-MB")
	b.ReportMetric(float64(unmarshalPeak)/1e6, "unmarshal-peak-heap-MB")
	b.ReportMetric(float64(parsePeak)/float64(unmarshalPeak), "peak-heap-ratio")
}
