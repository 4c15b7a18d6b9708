package ingest

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	gosarif "github.com/owenrumney/go-sarif/v3/pkg/report/v210/sarif"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/harness/natstest"

	"github.com/stateguard/stateguard/pkg/harness/benchmemtest"
)

var benchEmbedded = flag.Bool("embedded", false, "BenchmarkPipelineIngest100MB: run JetStream inside the benchmark's process (its heap then counts in the ingest's) instead of a child process")

func TestMain(m *testing.M) {
	natstest.ServeIfChild()
	os.Exit(m.Run())
}

// BenchmarkPipelineIngest100MB runs the whole ingest of a 100 MB log sent
// uncompressed: parse, gzip to the spool, SHA-256, Object Store put,
// publish, baseline and status, against JetStream (sync always), and plain
// json.Unmarshal of the same bytes into go-sarif's types in the same run.
// JetStream runs in a child process, as it does beside the service, so the
// ingest heap figure is the service's own; with -embedded it runs in this
// process and its buffers (8 MB per stream block being written) count too.
func BenchmarkPipelineIngest100MB(b *testing.B) {
	path := filepath.Join(b.TempDir(), "log.sarif")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	want, err := generatedLog(f, 100<<20, false)
	if err != nil {
		b.Fatal(err)
	}
	_ = f.Close()
	fi, _ := os.Stat(path)
	var client *events.Client
	if *benchEmbedded {
		client = natstest.Client(b, natstest.Run(b), events.WithSource("/stateguard/sastingest"))
	} else {
		client = natstest.ClientURL(b, natstest.RunProcess(b).URL, events.WithSource("/stateguard/sastingest"))
	}
	p, err := New(b.Context(), client, Options{SpoolDir: b.TempDir(), StoreTimeout: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(fi.Size())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		body, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		stop := benchmemtest.HeapPeak()
		start := time.Now()
		st, err := p.Ingest(b.Context(), Metadata{Repository: "bench/log", Version: strconv.Itoa(i)}, body, false)
		sec := time.Since(start).Seconds()
		peak := stop()
		_ = body.Close()
		if err != nil {
			b.Fatal(err)
		}
		if st.Summary.ResultsTotal != want {
			b.Fatalf("results %d, want %d", st.Summary.ResultsTotal, want)
		}

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
		usec := time.Since(start).Seconds()
		upeak := stop()
		runtime.KeepAlive(rep)

		mb := float64(fi.Size()) / 1e6
		b.ReportMetric(mb, "log-MB")
		b.ReportMetric(float64(st.Summary.Object.Size)/1e6, "stored-gzip-MB")
		b.ReportMetric(mb/sec, "ingest-MB/s")
		b.ReportMetric(mb/usec, "unmarshal-MB/s")
		b.ReportMetric(usec/sec, "throughput-ratio")
		b.ReportMetric(float64(peak)/1e6, "ingest-peak-heap-MB")
		b.ReportMetric(float64(upeak)/1e6, "unmarshal-peak-heap-MB")
		b.ReportMetric(float64(peak)/float64(upeak), "peak-heap-ratio")
	}
}
