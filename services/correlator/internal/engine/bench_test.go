package engine

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/harness/natstest"
	"github.com/stateguard/stateguard/services/correlator/internal/model"
	scenario "github.com/stateguard/stateguard/services/correlator/internal/scenariotest"
)

var (
	benchEvents         = flag.Int("events", 1_000_000, "BenchmarkMixedStream: snapshot events of the throughput phase")
	benchApps           = flag.Int("apps", 10_000, "BenchmarkMixedStream: applications")
	benchAppsPerNS      = flag.String("apps-per-namespace", "2", "BenchmarkMixedStream: applications per namespace; a list (1000,2) runs each layout in turn, -rounds times, and compares their rates")
	benchRounds         = flag.Int("rounds", 1, "BenchmarkMixedStream: with a list of -apps-per-namespace, how many times each layout runs (alternating)")
	benchObserveEvery   = flag.Int("observe-every", 0, "BenchmarkMixedStream: a workload.observed event after one snapshot event in n (0: none; #14 asks for 20)")
	benchWorkers        = flag.Int("workers", 512, "BenchmarkMixedStream: events handled at once per stream")
	benchRate           = flag.Int("rate", 1000, "BenchmarkMixedStream: events/s of the latency phase")
	benchLatencyN       = flag.Int("latency-events", 10_000, "BenchmarkMixedStream: events of the latency phase")
	benchLatencyPublish = flag.String("latency-publish", "each", "BenchmarkMixedStream: how the latency phase publishes its batches of 10 events: each (every event on its own) or chained (one Publish per batch, stored one after the other); a list (chained,each) runs the phase once per mode")
	benchNoSync         = flag.Bool("nosync", false, "BenchmarkMixedStream: run JetStream without sync_interval: always")
	benchHeap           = flag.String("heapprofile", "", "BenchmarkMixedStream: write a heap profile here after the throughput phase")
	benchCPU            = flag.String("throughput-cpuprofile", "", "BenchmarkMixedStream: write a CPU profile of the throughput phase only (not the backlog's publishing) here")
	benchMemLimit       = flag.Int("memlimit-mib", 900, "BenchmarkMixedStream: Go memory limit when GOMEMLIMIT is not set, as the service sets itself in a 1 GiB container (0: none)")
	benchEmbedded       = flag.Bool("embedded", false, "BenchmarkMixedStream: run JetStream inside the benchmark's process instead of a child process")
	benchLatencyTrace   = flag.String("latency-trace", "", "BenchmarkMixedStream: write each latency-phase event's stage times here (CSV, unix microseconds), to line spikes up with a trace of the server")
	benchNATSGOGC       = flag.String("nats-gogc", "200", "BenchmarkMixedStream: GOGC of the JetStream server's child process, as deploy/kustomize sets it (empty: Go's default, 100)")
	benchNATSGODEBUG    = flag.String("nats-godebug", "", "BenchmarkMixedStream: GODEBUG of the JetStream server's child process (gctrace=1 traces its GC cycles alone on stderr)")
	benchNATSMemLimit   = flag.Int("nats-memlimit-mib", 2048, "BenchmarkMixedStream: Go memory limit (GOMEMLIMIT) of the JetStream server's child process in MiB, as deploy/kustomize sets it (its container's limit; 0: none)")
	benchCluster        = flag.Int("cluster", 1, "BenchmarkMixedStream: JetStream servers (3: a cluster on loopback with streams and the state bucket replicated three times, as deployed)")
)

func TestMain(m *testing.M) {
	natstest.ServeIfChild()
	os.Exit(m.Run())
}

func pending(tb testing.TB, c *events.Client) uint64 {
	n, _ := consumerCounts(tb, c)
	return n
}

// consumerInfos reads each of the correlator's consumers as the server
// sees it, in the order of Consumers.
func consumerInfos(tb testing.TB, c *events.Client) []*jetstream.ConsumerInfo {
	var infos []*jetstream.ConsumerInfo
	for _, cons := range Consumers {
		info, err := c.JetStream().Consumer(context.Background(), cons.Stream, "correlator-"+cons.Suffix)
		if err != nil {
			tb.Fatal(err)
		}
		ci, err := info.Info(context.Background())
		if err != nil {
			tb.Fatal(err)
		}
		infos = append(infos, ci)
	}
	return infos
}

// consumerCounts sums, over the correlator's consumers, the events not yet
// acknowledged and the events delivered more than once.
func consumerCounts(tb testing.TB, c *events.Client) (pending uint64, redelivered int) {
	for _, ci := range consumerInfos(tb, c) {
		pending += ci.NumPending + uint64(ci.NumAckPending)
		redelivered += ci.NumRedelivered
	}
	return pending, redelivered
}

// consumerStates describes each consumer as the server sees it.
func consumerStates(tb testing.TB, c *events.Client) string {
	var parts []string
	for i, ci := range consumerInfos(tb, c) {
		parts = append(parts, fmt.Sprintf("%s: pending %d, ack pending %d, waiting pulls %d, redelivered %d, delivered %d, ack floor %d",
			Consumers[i].Suffix, ci.NumPending, ci.NumAckPending, ci.NumWaiting, ci.NumRedelivered, ci.Delivered.Stream, ci.AckFloor.Stream))
	}
	return strings.Join(parts, "; ")
}

// rssPeak and rss read a process's peak and current resident set size.
func rssPeak(pid string) string { return procStatus(pid, "VmHWM:") }

func rss(pid string) string { return procStatus(pid, "VmRSS:") }

// cpuTime is a process's user and system CPU time so far.
func cpuTime(pid string) time.Duration {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	// The fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ
}

func procStatus(pid, field string) string {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

// BenchmarkMixedStream measures the correlator with its state in KV on a
// real (embedded) JetStream: the sustained rate over a backlog of the mixed
// stream, then the decision latency at a fixed rate. It runs once whatever
// b.N is; sizes come from the flags (-events, -apps, ...). A list of
// -apps-per-namespace (1000,2: one namespace against the spread layout)
// runs each layout in turn, -rounds times, each with a server of its own,
// and ends with the layouts' rates side by side.
func BenchmarkMixedStream(b *testing.B) {
	var layouts []int
	for f := range strings.SplitSeq(*benchAppsPerNS, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			b.Fatalf("-apps-per-namespace %q: want a number of applications per namespace, or a list of them", *benchAppsPerNS)
		}
		layouts = append(layouts, n)
	}
	for b.Loop() {
		if len(layouts) == 1 {
			benchmarkMixedStream(b, layouts[0])
			continue
		}
		runs := map[int][]mixedRun{}
		for round := range max(1, *benchRounds) {
			for _, perNS := range layouts {
				b.Run(fmt.Sprintf("apps-per-namespace=%d/round=%d", perNS, round), func(b *testing.B) {
					runs[perNS] = append(runs[perNS], benchmarkMixedStream(b, perNS))
				})
			}
		}
		compareLayouts(b, layouts, runs)
	}
}

// mixedRun is what one run of the mixed stream measured.
type mixedRun struct {
	rate, publishRate float64 // events/s handled; messages/s of plain publishing
	p99               time.Duration
	load              [2]string // the machine's load average before and after
}

// compareLayouts prints each layout's runs and its mean rate against the
// last layout's (the spread one, in -apps-per-namespace 1000,2).
func compareLayouts(b *testing.B, layouts []int, runs map[int][]mixedRun) {
	mean := func(rs []mixedRun) (rate, ratio float64) {
		for _, r := range rs {
			rate += r.rate / float64(len(rs))
			ratio += r.rate / r.publishRate / float64(len(rs))
		}
		return rate, ratio
	}
	baseRate, _ := mean(runs[layouts[len(layouts)-1]])
	for _, perNS := range layouts {
		var each []string
		for _, r := range runs[perNS] {
			each = append(each, fmt.Sprintf("%.0f events/s (%.2fx plain publishing, p99 %s, load %s -> %s)",
				r.rate, r.rate/r.publishRate, r.p99.Round(time.Millisecond), r.load[0], r.load[1]))
		}
		rate, ratio := mean(runs[perNS])
		// Printed: a benchmark that runs sub-benchmarks does not show its
		// own log.
		fmt.Printf("layouts: %d apps per namespace: mean %.0f events/s, %.2fx plain publishing, %.2fx the rate of %d apps per namespace; runs: %s\n",
			perNS, rate, ratio, rate/baseRate, layouts[len(layouts)-1], strings.Join(each, "; "))
	}
}

// loadAverage is the machine's one-minute load average.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

// serverGCEnv sets GOGC, GOMEMLIMIT and GODEBUG in the environment that
// the server's child process inherits (-nats-gogc, -nats-memlimit-mib,
// -nats-godebug; this
// process's runtime read its own when it started) and returns what puts
// the environment back, so the next round's checks see it unchanged.
func serverGCEnv() (restore func()) {
	set := map[string]string{}
	if *benchNATSGOGC != "" {
		set["GOGC"] = *benchNATSGOGC
	}
	if *benchNATSGODEBUG != "" {
		set["GODEBUG"] = *benchNATSGODEBUG
	}
	if *benchNATSMemLimit > 0 {
		set["GOMEMLIMIT"] = strconv.Itoa(*benchNATSMemLimit) + "MiB"
	}
	var undo []func()
	for k, v := range set {
		if old, ok := os.LookupEnv(k); ok {
			undo = append(undo, func() { _ = os.Setenv(k, old) })
		} else {
			undo = append(undo, func() { _ = os.Unsetenv(k) })
		}
		_ = os.Setenv(k, v)
	}
	return func() {
		for _, u := range undo {
			u()
		}
	}
}

func benchmarkMixedStream(b *testing.B, perNS int) mixedRun {
	run := mixedRun{load: [2]string{loadAverage(), ""}}
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set && *benchMemLimit > 0 {
		old := debug.SetMemoryLimit(int64(*benchMemLimit) << 20)
		defer debug.SetMemoryLimit(old)
		b.Logf("Go memory limit %d MiB (90%% of a 1 GiB container, as service.Main sets it)", *benchMemLimit)
	}
	var opts []natstest.Option
	if *benchNoSync {
		opts = append(opts, natstest.WithoutSyncAlways())
	}
	var c *events.Client
	serverPid := ""
	// The client logs only what goes wrong (retries, redeliveries, pull
	// errors): on stderr, so a slow run says why.
	clientLog := events.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if *benchEmbedded {
		c = natstest.Client(b, natstest.Run(b, opts...), events.WithMaxPending(16384), clientLog)
	} else {
		restore := serverGCEnv()
		started := time.Now()
		p := natstest.RunProcess(b, append(opts, natstest.WithCluster(*benchCluster))...)
		restore()
		// The server's gctrace (-nats-godebug gctrace=1) counts from here.
		fmt.Fprintf(os.Stderr, "JetStream child process started at %s\n", started.UTC().Format(time.RFC3339Nano))
		serverPid = strconv.Itoa(p.Pid)
		c = natstest.ProcessClient(b, p, events.WithMaxPending(16384), clientLog)
		b.Logf("JetStream: %d server(s) in a child process (GOGC %q, GOMEMLIMIT %d MiB; empty, 0: Go's defaults), streams with %d replica(s), sync_interval always: %v",
			p.Servers, *benchNATSGOGC, *benchNATSMemLimit, p.Servers, !*benchNoSync)
	}
	m := scenario.MixedStream{Apps: *benchApps, PerNS: perNS, Start: scenario.T0, ObserveEvery: *benchObserveEvery}
	slots := max(1, *benchEvents / *benchApps)

	// Backlog, published as an ordinary producer does (the baseline).
	t0 := time.Now()
	pubJS, err := jetstream.New(c.Conn(), jetstream.WithPublishAsyncMaxPending(benchPublishWindow),
		jetstream.WithPublishAsyncTimeout(time.Minute))
	if err != nil {
		b.Fatal(err)
	}
	pub := pipelinedPublisher{b: b, js: pubJS, window: benchPublishWindow}
	total := 0
	publishAll := func(evs []events.Event) {
		for _, ev := range evs {
			pub.publish(ev)
		}
		total += len(evs)
	}
	// The next slot is made while one is published, so that making them
	// does not slow the baseline.
	made := make(chan []events.Event, 1)
	go func() {
		defer close(made)
		for k := range slots {
			made <- m.Slot(k)
		}
	}()
	publishAll(m.Certs())
	for evs := range made {
		publishAll(evs)
	}
	pub.wait()
	publishRate := float64(total) / time.Since(t0).Seconds()
	b.Logf("backlog: %d events (%d snapshot slots x %d apps, SARIF and certificates) published in %s = %.0f messages/s (the baseline: plain pipelined publishing to the same server, PublishMsgAsync with up to %d unacknowledged; %d refused and published again)",
		total, slots, *benchApps, time.Since(t0).Round(time.Millisecond), publishRate, benchPublishWindow, pub.retried)

	var heapPeak atomic.Uint64
	stopSampling := make(chan struct{})
	var sampling sync.WaitGroup
	sampling.Go(func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > heapPeak.Load() {
				heapPeak.Store(ms.HeapInuse)
			}
			select {
			case <-stopSampling:
				return
			case <-tick.C:
			}
		}
	})

	var mu sync.Mutex
	var latencies []time.Duration
	measuring := atomic.Bool{}
	var decisions atomic.Int64
	e, err := New(b.Context(), Options{
		Client: c, Rules: model.DefaultRules(), Workers: *benchWorkers, Replicas: max(1, *benchCluster),
		OnPublished: func(_ string, causeTime time.Time, ds []model.Decision) {
			decisions.Add(int64(len(ds)))
			if measuring.Load() {
				mu.Lock()
				latencies = append(latencies, time.Since(causeTime))
				mu.Unlock()
			}
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	if *benchCPU != "" {
		f, err := os.Create(*benchCPU)
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
		defer func() { _ = f.Close() }()
	}
	t1 := time.Now()
	cpuSelf0, cpuServer0 := cpuTime("self"), cpuTime(serverPid)
	gc0 := readGC()
	if err := e.Start(b.Context()); err != nil {
		b.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = e.Stop(ctx)
	}()
	time.Sleep(200 * time.Millisecond)
	lastReport := time.Now()
	lastLeft, lastMove, told := uint64(0), time.Now(), false
	for left := pending(b, c); left > 0; left = pending(b, c) {
		if left != lastLeft {
			lastLeft, lastMove, told = left, time.Now(), false
		} else if time.Since(lastMove) >= 3*time.Second && !told {
			// No progress: say where the events are, so a stall can be
			// told apart (not pulled, delivered but not acknowledged, or
			// acknowledged but not counted).
			told = true
			fmt.Fprintf(os.Stderr, "stall: no event handled for %s; %s\n", time.Since(lastMove).Round(time.Second), consumerStates(b, c))
		}
		if time.Since(lastReport) >= 10*time.Second {
			lastReport = time.Now()
			done := total - int(left)
			// Straight to stderr: a benchmark's log shows only when it ends.
			fmt.Fprintf(os.Stderr, "progress: %d of %d events handled in %s (%.0f/s), RSS %s\n", done, total,
				time.Since(t1).Round(time.Second), float64(done)/time.Since(t1).Seconds(), rss("self"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	elapsed := time.Since(t1)
	if *benchCPU != "" {
		pprof.StopCPUProfile()
	}
	rate := float64(total) / elapsed.Seconds()
	// Redeliveries (a failed handler, or an ack that never arrived and
	// AckWait ran out) stretch the run; say how many there were.
	_, redelivered := consumerCounts(b, c)
	writes := e.store.writes.Load() + e.store.partWrites.Load() // keys: the namespaces' and their parts
	stored := float64(decisions.Load()+writes) / elapsed.Seconds()
	b.Logf("throughput (%d apps per namespace): %.0f events/s = %.2fx plain publishing's messages/s", perNS, rate, rate/publishRate)
	run.rate, run.publishRate = rate, publishRate
	b.Logf("throughput: %d events in %s = %.0f events/s; it stored %d decisions and %d state writes (%.2f messages per event) = %.0f messages/s, %.2fx the baseline's publishing; %d events delivered again",
		total, elapsed.Round(time.Millisecond), rate, decisions.Load(), writes, float64(decisions.Load()+writes)/float64(total), stored, stored/publishRate, redelivered)
	b.ReportMetric(rate, "events/s")
	b.ReportMetric(stored/publishRate, "stored-vs-publish")
	if serverPid != "" {
		cs, cn := cpuTime("self")-cpuSelf0, cpuTime(serverPid)-cpuServer0
		b.Logf("CPU over the throughput phase: correlator %s (%.2f cores, %.3f ms per event), NATS server(s) %s (%.2f cores)",
			cs.Round(time.Second), cs.Seconds()/elapsed.Seconds(), cs.Seconds()*1000/float64(total), cn.Round(time.Second), cn.Seconds()/elapsed.Seconds())
	}
	gc := readGC().since(gc0)
	b.Logf("GC over the throughput phase: %d cycles, %.1f CPU s of the Go runtime's %.1f (%.0f%%: mark assists %.1f s, background %.1f s)",
		gc.cycles, gc.gc, gc.total, 100*gc.gc/max(gc.total, 1e-9), gc.assist, gc.background)
	if *benchHeap != "" {
		f, err := os.Create(*benchHeap)
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		if err := pprof.WriteHeapProfile(f); err != nil {
			b.Fatal(err)
		}
		_ = f.Close()
	}

	// Latency at a fixed rate, once per -latency-publish mode (the same
	// state, load and disk for each, so they compare): new slots, made
	// before the phase starts (making a slot of every application,
	// mid-phase, can stall the publisher), sent open-loop: batch i of 10
	// at t2 + i*10/rate, so a slow acknowledgement (each publication
	// waits for the server's fsync) delays neither the next events nor
	// their schedule. "each" publishes every event by a goroutine of its
	// own, as independent producers do; "chained" publishes a batch with
	// one Publish, which stores a caller's events of one stream one after
	// the other (each once the one before is stored), so the tenth waits
	// for nine round trips. offered is the rate the schedule kept; the
	// time the correlator took after the last event is told apart. Each
	// event's path is timed stage by stage.
	nextSlot := slots
	var p99 time.Duration
	for mode := range strings.SplitSeq(*benchLatencyPublish, ",") {
		chained := strings.TrimSpace(mode) == "chained"
		var stages sync.Map // event id -> *stageTimes
		hook := func(stage, id string) {
			if v, ok := stages.Load(id); ok {
				v.(*stageTimes).mark(stage, time.Now())
			}
		}
		stageHook.Store(&hook)
		var gc0 runtime.MemStats
		runtime.ReadMemStats(&gc0)
		var queue []events.Event
		for ; len(queue) < *benchLatencyN; nextSlot++ {
			queue = append(queue, m.Slot(nextSlot)...)
		}
		queue = queue[:*benchLatencyN]
		mu.Lock()
		latencies = nil
		mu.Unlock()
		measuring.Store(true)
		per := time.Second / time.Duration(*benchRate)
		batch := 10
		sent := 0
		var publishing sync.WaitGroup
		var publishErr atomic.Pointer[error]
		publish := func(evs []events.Event, sts []*stageTimes) {
			if err := c.Publish(b.Context(), evs...); err != nil {
				publishErr.CompareAndSwap(nil, &err)
			}
			now := time.Now()
			for _, st := range sts {
				st.mark("acked", now)
			}
		}
		t2 := time.Now()
		fmt.Fprintf(os.Stderr, "latency phase (%s) starts at %s\n", mode, t2.UTC().Format(time.RFC3339Nano))
		for i := 0; sent < len(queue); i++ {
			if wait := time.Until(t2.Add(time.Duration(i*batch) * per)); wait > 0 {
				time.Sleep(wait)
			}
			evs := queue[sent:min(sent+batch, len(queue))]
			// Stamp the events now, so latency counts from publication.
			sts := make([]*stageTimes, len(evs))
			for j := range evs {
				now := time.Now()
				evs[j] = evs[j].Clone()
				evs[j].SetTime(now)
				sts[j] = &stageTimes{at: map[string]time.Time{"stamp": now}}
				stages.Store(evs[j].ID(), sts[j])
			}
			if chained {
				publishing.Go(func() { publish(evs, sts) })
			} else {
				for j := range evs {
					publishing.Go(func() { publish(evs[j:j+1], sts[j:j+1]) })
				}
			}
			sent += len(evs)
		}
		offered := float64(sent) / time.Since(t2).Seconds()
		publishing.Wait()
		if err := publishErr.Load(); err != nil {
			b.Fatal(*err)
		}
		t3 := time.Now()
		for pending(b, c) > 0 {
			time.Sleep(50 * time.Millisecond)
		}
		drained := time.Since(t3)
		measuring.Store(false)
		stageHook.Store(nil)
		mu.Lock()
		slices.Sort(latencies)
		n := len(latencies)
		mu.Unlock()
		if n == 0 {
			b.Fatal("no decisions in the latency phase")
		}
		p := func(q float64) time.Duration { return latencies[min(n-1, int(q*float64(n)))] }
		var gc1 runtime.MemStats
		runtime.ReadMemStats(&gc1)
		b.Logf("latency (%s) at %.0f events/s offered (%d events; the correlator was done %s after the last): %d decision batches, p50 %s, p99 %s, max %s; %d GCs, load %s",
			mode, offered, sent, drained.Round(time.Millisecond), n, p(0.5).Round(100*time.Microsecond), p(0.99).Round(100*time.Microsecond), latencies[n-1].Round(100*time.Microsecond), gc1.NumGC-gc0.NumGC, loadAverage())
		fmt.Printf("latency (%s): p50 %s, p99 %s, max %s at %.0f events/s offered\n", mode, p(0.5).Round(100*time.Microsecond), p(0.99).Round(100*time.Microsecond), latencies[n-1].Round(100*time.Microsecond), offered)
		logStages(&stages)
		if *benchLatencyTrace != "" {
			writeStageTrace(b, *benchLatencyTrace+"."+strings.TrimSpace(mode), &stages)
			writeGCTrace(b, *benchLatencyTrace+"."+strings.TrimSpace(mode)+".gc", t2)
		}
		p99 = p(0.99)
	}
	close(stopSampling)
	sampling.Wait()
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(heapPeak.Load())/(1<<20), "heap-peak-MiB")
	if serverPid == "" {
		b.Logf("peak RSS of the process (correlator and the embedded NATS server): %s; peak Go heap in use %d MiB", rssPeak("self"), heapPeak.Load()>>20)
	} else {
		b.Logf("peak RSS: correlator (with the benchmark's publisher) %s, NATS server (child process) %s; peak Go heap in use %d MiB", rssPeak("self"), rssPeak(serverPid), heapPeak.Load()>>20)
	}
	run.p99, run.load[1] = p99, loadAverage()
	b.Logf("load average %s -> %s", run.load[0], run.load[1])
	return run
}

// gcStats is the Go runtime's account of GC work so far (runtime/metrics;
// CPU seconds are its estimates, over every thread of the process).
type gcStats struct {
	cycles                        uint64
	gc, assist, background, total float64
}

func readGC() gcStats {
	samples := []rtmetrics.Sample{
		{Name: "/gc/cycles/total:gc-cycles"},
		{Name: "/cpu/classes/gc/total:cpu-seconds"},
		{Name: "/cpu/classes/gc/mark/assist:cpu-seconds"},
		{Name: "/cpu/classes/gc/mark/dedicated:cpu-seconds"},
		{Name: "/cpu/classes/gc/mark/idle:cpu-seconds"},
		{Name: "/cpu/classes/total:cpu-seconds"},
		{Name: "/cpu/classes/idle:cpu-seconds"},
	}
	rtmetrics.Read(samples)
	f := func(i int) float64 {
		if samples[i].Value.Kind() != rtmetrics.KindFloat64 {
			return 0
		}
		return samples[i].Value.Float64()
	}
	var cycles uint64
	if samples[0].Value.Kind() == rtmetrics.KindUint64 {
		cycles = samples[0].Value.Uint64()
	}
	return gcStats{cycles: cycles, gc: f(1), assist: f(2), background: f(3) + f(4), total: f(5) - f(6)}
}

func (s gcStats) since(o gcStats) gcStats {
	return gcStats{cycles: s.cycles - o.cycles, gc: s.gc - o.gc, assist: s.assist - o.assist,
		background: s.background - o.background, total: s.total - o.total}
}

// benchPublishWindow bounds the messages the baseline's publisher has sent
// and not yet seen acknowledged.
const benchPublishWindow = 4096

// pipelinedPublisher is the benchmark's baseline: plain publishing as an
// ordinary producer does it — each event encoded as events.Client encodes
// it (headers, Nats-Msg-Id) and sent with JetStream's PublishMsgAsync on a
// JetStream context of its own (acknowledgements awaited up to a minute:
// with sync_interval: always and 4,096 in flight, the client's shorter
// timeout refused a tenth of them under load), up to window messages
// unacknowledged, every acknowledgement awaited. Unlike
// events.Client.Publish it keeps no order between the events of a stream
// (the client sends one caller's events of a stream one round trip at a
// time since the ordering fix, which made the old baseline ~2.6x slower
// and the printed ratio meaningless). An event refused (a timeout) is sent
// again the same way, up to five times; the stream's de-duplication keeps
// a copy that was stored after all from counting twice.
type pipelinedPublisher struct {
	b       *testing.B
	js      jetstream.JetStream
	window  int
	pending []pendingPub
	retried int
}

type pendingPub struct {
	msg      *nats.Msg
	fut      jetstream.PubAckFuture
	attempts int
}

func (p *pipelinedPublisher) publish(ev events.Event) {
	msg, err := events.Encode(ev)
	if err != nil {
		p.b.Fatal(err)
	}
	p.send(msg, 1)
}

func (p *pipelinedPublisher) send(msg *nats.Msg, attempts int) {
	for len(p.pending) >= p.window {
		p.settle()
	}
	for {
		fut, err := p.js.PublishMsgAsync(msg)
		if err == nil {
			p.pending = append(p.pending, pendingPub{msg: msg, fut: fut, attempts: attempts})
			return
		}
		if attempts >= 5 {
			p.b.Fatalf("publish %s: %v", msg.Header.Get(nats.MsgIdHdr), err)
		}
		attempts++
		p.retried++
		time.Sleep(100 * time.Millisecond)
	}
}

// settle waits for the oldest message in flight.
func (p *pipelinedPublisher) settle() {
	first := p.pending[0]
	p.pending = p.pending[1:]
	select {
	case <-first.fut.Ok():
	case err := <-first.fut.Err():
		if first.attempts >= 5 {
			p.b.Fatalf("publish %s: %v", first.msg.Header.Get(nats.MsgIdHdr), err)
		}
		p.retried++
		p.send(first.msg, first.attempts+1)
	case <-p.b.Context().Done():
		p.b.Fatal(p.b.Context().Err())
	}
}

// wait returns once every message sent is acknowledged.
func (p *pipelinedPublisher) wait() {
	for len(p.pending) > 0 {
		p.settle()
	}
}

// stageTimes is when one event of the latency phase reached each stage:
// stamped and published ("stamp"), acknowledged to its publisher
// ("acked"), then the engine's stages (stageHook).
type stageTimes struct {
	mu sync.Mutex
	at map[string]time.Time
}

// mark records the first time the event reached stage.
func (st *stageTimes) mark(stage string, t time.Time) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if _, seen := st.at[stage]; !seen {
		st.at[stage] = t
	}
}

func (st *stageTimes) get(stage string) (time.Time, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	t, ok := st.at[stage]
	return t, ok
}

// writeStageTrace writes the stage times of every event of the latency
// phase to path: one line per event, its id and, per stage, the unix
// microseconds it got there (empty when it did not).
func writeStageTrace(tb testing.TB, path string, stages *sync.Map) {
	names := []string{"stamp", "acked", "start", "apply", "pub", "published"}
	var out strings.Builder
	out.WriteString("id," + strings.Join(names, ",") + "\n")
	stages.Range(func(k, v any) bool {
		st := v.(*stageTimes)
		out.WriteString(k.(string))
		for _, n := range names {
			out.WriteString(",")
			if t, ok := st.get(n); ok {
				out.WriteString(strconv.FormatInt(t.UnixMicro(), 10))
			}
		}
		out.WriteString("\n")
		return true
	})
	if err := os.WriteFile(path, []byte(out.String()), 0o644); err != nil {
		tb.Fatal(err)
	}
}

// writeGCTrace writes when the correlator's GC cycles since t ended their
// stop-the-world pauses (unix microseconds) and the pauses' length.
func writeGCTrace(tb testing.TB, path string, t time.Time) {
	var gs debug.GCStats
	debug.ReadGCStats(&gs)
	var out strings.Builder
	out.WriteString("pause_end,pause_us\n")
	for i := len(gs.PauseEnd) - 1; i >= 0; i-- {
		if gs.PauseEnd[i].Before(t) {
			continue
		}
		fmt.Fprintf(&out, "%d,%d\n", gs.PauseEnd[i].UnixMicro(), gs.Pause[i].Microseconds())
	}
	if err := os.WriteFile(path, []byte(out.String()), 0o644); err != nil {
		tb.Fatal(err)
	}
}

// logStages prints where the latency phase's events spent their time:
// per pair of consecutive stages the percentiles of the time between
// them, and over the phase, per quarter second, the slowest event's time
// from stamp to its decisions published (a stall shows as a ramp).
// Printed, not logged: a benchmark's log is cut at a few lines.
func logStages(stages *sync.Map) {
	var all []*stageTimes
	stages.Range(func(_, v any) bool {
		all = append(all, v.(*stageTimes))
		return true
	})
	if len(all) == 0 {
		return
	}
	between := func(a, z string) []time.Duration {
		var ds []time.Duration
		for _, st := range all {
			ta, okA := st.get(a)
			tz, okZ := st.get(z)
			if okA && okZ {
				ds = append(ds, tz.Sub(ta))
			}
		}
		slices.Sort(ds)
		return ds
	}
	for _, pr := range [][2]string{{"stamp", "acked"}, {"stamp", "start"}, {"start", "apply"}, {"apply", "pub"}, {"pub", "published"}, {"stamp", "published"}} {
		ds := between(pr[0], pr[1])
		if len(ds) == 0 {
			continue
		}
		q := func(f float64) time.Duration {
			return ds[min(len(ds)-1, int(f*float64(len(ds))))].Round(100 * time.Microsecond)
		}
		fmt.Printf("latency stage %s -> %s (%d events): p50 %s, p90 %s, p99 %s, max %s\n",
			pr[0], pr[1], len(ds), q(0.5), q(0.9), q(0.99), ds[len(ds)-1].Round(100*time.Microsecond))
	}
	first, _ := all[0].get("stamp")
	for _, st := range all {
		if t, _ := st.get("stamp"); t.Before(first) {
			first = t
		}
	}
	worst := map[int]time.Duration{}
	last := 0
	for _, st := range all {
		a, _ := st.get("stamp")
		if z, ok := st.get("published"); ok {
			q := int(a.Sub(first) / (250 * time.Millisecond))
			worst[q] = max(worst[q], z.Sub(a))
			last = max(last, q)
		}
	}
	line := make([]string, last+1)
	for i := range line {
		line[i] = worst[i].Round(time.Millisecond).String()
	}
	fmt.Printf("latency stamp -> published, slowest event per 250 ms of the phase: %s\n", strings.Join(line, " "))
}
