package discovery

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stateguard/stateguard/services/certwatcher/internal/certgen"
	"github.com/stateguard/stateguard/services/certwatcher/internal/inventory"
)

const benchSecrets = 10000

var (
	benchOnce sync.Once
	benchNS   string
	benchErr  error
)

// benchSetup creates 10,000 TLS Secrets once, concurrently, each with its
// own certificate (100 distinct keys signed into 10,000 certificates).
func benchSetup(b *testing.B) string {
	b.Helper()
	benchOnce.Do(func() {
		benchNS = namespace(b)
		ca, err := certgen.Build(certgen.CommonName("bench CA"), certgen.CA())
		if err != nil {
			benchErr = err
			return
		}
		start := time.Now()
		work := make(chan int)
		var wg sync.WaitGroup
		var mu sync.Mutex
		for range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range work {
					leaf, err := certgen.Build(certgen.CommonName(fmt.Sprintf("svc-%d", i)), certgen.DNSNames(fmt.Sprintf("svc-%d.bench.svc", i)),
						certgen.NotAfter(time.Now().Add(time.Duration(i%400)*24*time.Hour)), certgen.SignedBy(ca))
					if err == nil {
						_, err = env.Client.CoreV1().Secrets(benchNS).Create(context.Background(), &corev1.Secret{
							ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("tls-%05d", i)},
							Type:       corev1.SecretTypeTLS,
							Data:       map[string][]byte{corev1.TLSCertKey: certgen.ChainPEM(leaf, ca), corev1.TLSPrivateKeyKey: leaf.KeyPEM},
						}, metav1.CreateOptions{})
					}
					if err != nil {
						mu.Lock()
						benchErr = err
						mu.Unlock()
					}
				}
			}()
		}
		for i := range benchSecrets {
			work <- i
		}
		close(work)
		wg.Wait()
		b.Logf("created %d TLS secrets in %s", benchSecrets, time.Since(start).Round(time.Millisecond))
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchNS
}

// BenchmarkInitialScan compares certwatcher's initial scan of 10,000 TLS
// Secrets — informer list, transform, parse every chain, fill the
// inventory — with a plain client-go List of the same Secrets, in the same
// run. It reports ratio = scan/list (target ≤ 1.5) and the heap the scan
// keeps.
func BenchmarkInitialScan(b *testing.B) {
	ns := benchSetup(b)
	ctx := b.Context()
	scanClient, err := NewClient(env.Config)
	if err != nil {
		b.Fatal(err)
	}
	var listTotal, sameListTotal, scanTotal, syncTotal time.Duration
	var heapKept uint64
	for b.Loop() {
		// The baseline: one List, as any client would do it.
		t0 := time.Now()
		list, err := env.Client.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			b.Fatal(err)
		}
		listTotal += time.Since(t0)
		if len(list.Items) != benchSecrets {
			b.Fatalf("listed %d secrets", len(list.Items))
		}
		list = nil
		// The same List through certwatcher's client settings.
		t0 = time.Now()
		if _, err := scanClient.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{}); err != nil {
			b.Fatal(err)
		}
		sameListTotal += time.Since(t0)

		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		t1 := time.Now()
		store := inventory.New(nil)
		d, err := New(ctx, Options{Client: scanClient, Namespaces: []string{ns}, PEMKeyPatterns: patterns, Store: store,
			Log: slog.New(slog.DiscardHandler), WithoutUsers: true})
		if err != nil {
			b.Fatal(err)
		}
		sctx, cancel := context.WithCancel(ctx)
		d.Start(sctx)
		for !d.HasSynced() {
			time.Sleep(time.Millisecond)
		}
		syncTotal += time.Since(t1)
		for store.Len() < benchSecrets { // parsing finishes after the cache sync
			time.Sleep(time.Millisecond)
		}
		scanTotal += time.Since(t1)
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		if after.HeapAlloc > before.HeapAlloc {
			heapKept = after.HeapAlloc - before.HeapAlloc
		}
		cancel()
		runtime.KeepAlive(d)
	}
	n := float64(b.N)
	b.ReportMetric(listTotal.Seconds()/n*1000, "list-ms")
	b.ReportMetric(scanTotal.Seconds()/n*1000, "scan-ms")
	b.ReportMetric(syncTotal.Seconds()/n*1000, "sync-ms")
	b.ReportMetric(scanTotal.Seconds()/listTotal.Seconds(), "ratio")
	b.ReportMetric(sameListTotal.Seconds()/n*1000, "samecfg-list-ms")
	b.ReportMetric(scanTotal.Seconds()/sameListTotal.Seconds(), "ratio-samecfg")
	b.ReportMetric(float64(heapKept)/(1<<20), "scan-heap-MiB")
}
