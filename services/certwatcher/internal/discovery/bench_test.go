package discovery

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stateguard/stateguard/pkg/harness/benchmemtest"

	"github.com/stateguard/stateguard/services/certwatcher/internal/certgentest"
	"github.com/stateguard/stateguard/services/certwatcher/internal/inventory"
)

const benchSecrets = 10000

var (
	benchOnce sync.Once
	benchNS   string
	benchErr  error
)

// benchIssuers is the number of issuing (intermediate) CAs the benchmark's
// leaf certificates are spread over.
const benchIssuers = 10

// benchSetup creates 10,000 TLS Secrets once, concurrently. Chain shape:
// tls.crt holds a leaf unique to the Secret (ECDSA P-256, one DNS SAN)
// followed by one of 10 issuing intermediate CAs (Secret i is issued by
// intermediate i mod 10), all signed by one root that, as usual, is not in
// the chain; tls.key holds the leaf's key.
func benchSetup(b *testing.B) string {
	b.Helper()
	benchOnce.Do(func() {
		benchNS = namespace(b)
		root, err := certgentest.Build(certgentest.CommonName("bench root CA"), certgentest.CA())
		if err != nil {
			benchErr = err
			return
		}
		var issuers []*certgentest.Pair
		for i := range benchIssuers {
			ca, err := certgentest.Build(certgentest.CommonName(fmt.Sprintf("bench issuing CA %d", i)), certgentest.CA(), certgentest.SignedBy(root))
			if err != nil {
				benchErr = err
				return
			}
			issuers = append(issuers, ca)
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
					leaf, err := certgentest.Build(certgentest.CommonName(fmt.Sprintf("svc-%d", i)), certgentest.DNSNames(fmt.Sprintf("svc-%d.bench.svc", i)),
						certgentest.NotAfter(time.Now().Add(time.Duration(i%400)*24*time.Hour)), certgentest.SignedBy(issuers[i%benchIssuers]))
					if err == nil {
						_, err = env.Client.CoreV1().Secrets(benchNS).Create(context.Background(), &corev1.Secret{
							ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("tls-%05d", i)},
							Type:       corev1.SecretTypeTLS,
							Data:       map[string][]byte{corev1.TLSCertKey: certgentest.ChainPEM(leaf, issuers[i%benchIssuers]), corev1.TLSPrivateKeyKey: leaf.KeyPEM},
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
// inventory — with a plain client-go List of the same Secrets (default
// client settings: JSON, gzip), in the same run, and with the same List
// through certwatcher's client settings (protobuf, no gzip). It reports
// ratio = scan/list (target ≤ 1.5), ratio-samecfg = scan/protobuf list, and
// for the List and the scan the heap each keeps (the list it returns; the
// informer cache and the inventory), its peak heap above the level before
// it, and the CPU time this process (the client side) spent on it.
func BenchmarkInitialScan(b *testing.B) {
	ns := benchSetup(b)
	ctx := b.Context()
	scanClient, err := NewClient(env.Config)
	if err != nil {
		b.Fatal(err)
	}
	var listTotal, sameListTotal, scanTotal, syncTotal, listCPU, scanCPU time.Duration
	var listKept, listPeak, scanKept, scanPeak uint64
	for b.Loop() {
		// The baseline: one List, as any client would do it.
		before := heapAfterGC()
		stop := benchmemtest.HeapPeak()
		c0, t0 := processCPU(), time.Now()
		list, err := env.Client.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			b.Fatal(err)
		}
		listTotal += time.Since(t0)
		listCPU += processCPU() - c0
		listPeak = max(listPeak, stop())
		after := heapAfterGC()
		listKept = max(listKept, after-min(before, after))
		if len(list.Items) != benchSecrets {
			b.Fatalf("listed %d secrets", len(list.Items))
		}
		runtime.KeepAlive(list)
		list = nil

		// The same List through certwatcher's client settings.
		runtime.GC()
		t0 = time.Now()
		if _, err := scanClient.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{}); err != nil {
			b.Fatal(err)
		}
		sameListTotal += time.Since(t0)

		before = heapAfterGC()
		stop = benchmemtest.HeapPeak()
		c1, t1 := processCPU(), time.Now()
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
		scanCPU += processCPU() - c1
		scanPeak = max(scanPeak, stop())
		after = heapAfterGC()
		scanKept = max(scanKept, after-min(before, after))
		cancel()
		runtime.KeepAlive(d)
		runtime.KeepAlive(store)
	}
	n := float64(b.N)
	b.ReportMetric(listTotal.Seconds()/n*1000, "list-ms")
	b.ReportMetric(scanTotal.Seconds()/n*1000, "scan-ms")
	b.ReportMetric(syncTotal.Seconds()/n*1000, "sync-ms")
	b.ReportMetric(scanTotal.Seconds()/listTotal.Seconds(), "ratio")
	b.ReportMetric(sameListTotal.Seconds()/n*1000, "samecfg-list-ms")
	b.ReportMetric(listCPU.Seconds()/n*1000, "list-cpu-ms")
	b.ReportMetric(scanCPU.Seconds()/n*1000, "scan-cpu-ms")
	b.ReportMetric(scanTotal.Seconds()/sameListTotal.Seconds(), "ratio-samecfg")
	const mib = 1 << 20
	b.ReportMetric(float64(listKept)/mib, "list-kept-MiB")
	b.ReportMetric(float64(listPeak)/mib, "list-peak-MiB")
	b.ReportMetric(float64(scanKept)/mib, "scan-kept-MiB")
	b.ReportMetric(float64(scanPeak)/mib, "scan-peak-MiB")
}

// processCPU returns the CPU time (user and system) of this process: the
// client side, not the API server's.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// heapAfterGC returns the bytes of live heap objects after a collection.
func heapAfterGC() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
