package main

import (
	"bytes"
	"context"
	"crypto/sha1" //nolint:gosec // a commit id's shape, not security
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/harness/logtest"
	"github.com/stateguard/stateguard/pkg/harness/natstest"
)

// TestMain lets the test binary serve as a JetStream server in a network
// namespace (natstest.RunNetnsCluster).
func TestMain(m *testing.M) {
	natstest.ServeIfChild()
	os.Exit(m.Run())
}

// TestEveryAcknowledgedUploadHasOneEventThroughPartitionAndKill runs a
// three-server JetStream cluster, each server in a network namespace of
// its own, and uploads under load while the SARIF stream's leader is cut
// off (a minority of one: its link set down) and healed, and then the new
// leader is killed with SIGKILL and started again on its store. Uploads
// are retried as a CI job would (the same log and metadata) until
// acknowledged. Every acknowledged upload has exactly one
// sarif.uploaded event in the stream: none lost, none duplicated.
func TestEveryAcknowledgedUploadHasOneEventThroughPartitionAndKill(t *testing.T) {
	const (
		uploads = 120
		workers = 4
	)
	cl := natstest.RunNetnsCluster(t, 3)
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	nc, err := nats.Connect(cl.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	poll(ctx, t, "a JetStream meta leader", func() error {
		// Each attempt bounded: before a meta leader is elected the request
		// is not answered at all.
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err := js.AccountInfo(actx)
		return err
	})

	// A client on the server cut off learns it from unanswered pings
	// (no reset comes): a short interval keeps the test short.
	var svcLog logtest.Buffer
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("sastingest log:\n%s", svcLog.String())
		}
	})
	base := startServiceLog(t, cl.URL(), &svcLog, "--stream-replicas=3", "--max-concurrent-uploads=16",
		"--nats-ping-interval=1s", "--store-timeout=10s")
	log, err := os.ReadFile("testdata/gosec-sampleapp.sarif")
	if err != nil {
		t.Fatal(err)
	}

	// leader names the server leading the SARIF stream.
	// It runs on the faults' goroutine, so it returns its error.
	leader := func() (int, error) {
		idx := -1
		err := retry(ctx, func() error {
			actx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			info, err := js.Stream(actx, events.StreamSARIF)
			if err != nil {
				return err
			}
			si := info.CachedInfo()
			if si.Cluster == nil {
				return errors.New("no cluster info")
			}
			for i := range 3 {
				if cl.Name(i) == si.Cluster.Leader {
					idx = i
					return nil
				}
			}
			return fmt.Errorf("leader %q", si.Cluster.Leader)
		})
		return idx, err
	}

	var acked atomic.Int64
	var mu sync.Mutex
	ids := map[string]int{} // acknowledged upload id → upload number
	retries := 0
	upload := func(n int) error {
		sum := sha1.Sum([]byte(strconv.Itoa(n))) //nolint:gosec // a commit id's shape
		url := base + "/v1/sarif?repository=acme/shop&commit_sha=" + hex.EncodeToString(sum[:])
		last := "nothing"
		for attempt := 0; ; attempt++ {
			if ctx.Err() != nil {
				return fmt.Errorf("upload %d not acknowledged after %d attempts (last answer: %s): %w", n, attempt, last, ctx.Err())
			}
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(log))
			req.Header.Set("Authorization", "Bearer t0ken")
			req.Header.Set("Content-Type", "application/sarif+json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				last = err.Error()
			} else {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				last = fmt.Sprintf("%d %s", resp.StatusCode, b)
				var body struct{ ID string }
				derr := json.Unmarshal(b, &body)
				if resp.StatusCode == http.StatusAccepted && derr == nil && body.ID != "" {
					mu.Lock()
					if prev, ok := ids[body.ID]; ok && prev != n {
						mu.Unlock()
						return fmt.Errorf("uploads %d and %d got the same id %s", prev, n, body.ID)
					}
					ids[body.ID] = n
					retries += attempt
					mu.Unlock()
					acked.Add(1)
					return nil
				}
			}
			select { // 503 while the stream elects a leader, 429 when busy: retry
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}

	faults := make(chan string, 8)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the faults, each once enough uploads were acknowledged
		defer wg.Done()
		waitAcks := func(n int64) bool {
			for acked.Load() < n {
				if ctx.Err() != nil {
					return false
				}
				time.Sleep(20 * time.Millisecond)
			}
			return true
		}
		if !waitAcks(20) {
			return
		}
		p, err := leader()
		if err != nil {
			faults <- "no leader to partition: " + err.Error()
			return
		}
		cl.Net.Partition(p)
		faults <- fmt.Sprintf("partitioned %s (leader) at %d acks", cl.Name(p), acked.Load())
		if !waitAcks(50) { // the majority serves while the minority is cut off
			return
		}
		cl.Net.Heal(p)
		faults <- fmt.Sprintf("healed %s at %d acks", cl.Name(p), acked.Load())
		if !waitAcks(70) {
			return
		}
		k, err := leader()
		if err != nil {
			faults <- "no leader to kill: " + err.Error()
			return
		}
		cl.Kill(k)
		faults <- fmt.Sprintf("killed -9 %s (leader) at %d acks", cl.Name(k), acked.Load())
		if !waitAcks(95) {
			return
		}
		cl.Start(k)
		faults <- fmt.Sprintf("restarted %s at %d acks", cl.Name(k), acked.Load())
	}()

	start := time.Now()
	next := make(chan int)
	errs := make(chan error, workers)
	var lwg sync.WaitGroup
	for range workers {
		lwg.Add(1)
		go func() {
			defer lwg.Done()
			for n := range next {
				if err := upload(n); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for n := range uploads {
		select {
		case next <- n:
		case err := <-errs:
			t.Fatal(err)
		}
	}
	close(next)
	lwg.Wait()
	wg.Wait()
	close(faults)
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var happened []string
	for f := range faults {
		happened = append(happened, f)
	}
	if len(happened) != 4 {
		t.Fatalf("the faults did not all happen: %v", happened)
	}
	load := time.Since(start)

	// Count the events the stream holds per upload id.
	var stored int
	perID := map[string]int{}
	poll(ctx, t, "reading the SARIF stream", func() error {
		stored, perID = 0, map[string]int{}
		cons, err := js.OrderedConsumer(ctx, events.StreamSARIF, jetstream.OrderedConsumerConfig{})
		if err != nil {
			return err
		}
		info, err := js.Stream(ctx, events.StreamSARIF)
		if err != nil {
			return err
		}
		total := int(info.CachedInfo().State.Msgs)
		for seen := 0; seen < total; {
			batch, err := cons.Fetch(min(100, total-seen), jetstream.FetchMaxWait(5*time.Second))
			if err != nil {
				return err
			}
			got := 0
			for m := range batch.Messages() {
				got++
				ev, err := events.DecodeMsg(&nats.Msg{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()})
				if err != nil {
					t.Fatalf("stream holds an undecodable message: %v", err)
				}
				if ev.Type() != events.TypeSARIFUploaded {
					continue
				}
				up, err := events.Decode[events.SARIFUploaded](ev)
				if err != nil {
					t.Fatal(err)
				}
				stored++
				perID[up.UploadID]++
			}
			if batch.Error() != nil {
				return batch.Error()
			}
			if got == 0 {
				return errors.New("fetch returned nothing")
			}
			seen += got
		}
		return nil
	})
	var lost, duplicated, unacked int
	for id := range ids {
		switch perID[id] {
		case 0:
			lost++
		case 1:
		default:
			duplicated++
		}
	}
	for id := range perID {
		if _, ok := ids[id]; !ok {
			unacked++
		}
	}
	t.Logf("faults: %v", happened)
	t.Logf("%d uploads in %s (%d retries of refused or failed requests): acknowledged %d, events stored %d, lost %d, duplicated %d, stored but never acknowledged %d",
		uploads, load.Round(time.Millisecond), retries, len(ids), stored, lost, duplicated, unacked)
	if len(ids) != uploads || lost != 0 || duplicated != 0 || unacked != 0 || stored != uploads {
		t.Errorf("want %d acknowledged uploads each with exactly one event", uploads)
	}
}

// poll calls f until it succeeds, failing the test with its last error
// when ctx ends.
func poll(ctx context.Context, t *testing.T, what string, f func() error) {
	t.Helper()
	if err := retry(ctx, f); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// retry calls f until it succeeds or ctx ends (then its last error).
func retry(ctx context.Context, f func() error) error {
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
}
