package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"
)

// heldUpload starts an upload whose body is a pipe the test writes, and
// returns the pipe and a channel with the answer's status.
func heldUpload(t *testing.T, f *fixture) (*io.PipeWriter, <-chan int) {
	t.Helper()
	pr, pw := io.Pipe()
	t.Cleanup(func() { _ = pw.Close() })
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, f.url+"/v1/sarif"+uploadQuery, pr)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range sarifHeaders(goodToken) {
		req.Header.Set(k, v)
	}
	codes := make(chan int, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			codes <- 0
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		codes <- resp.StatusCode
	}()
	return pw, codes
}

// waitAdmitted waits until n uploads hold a slot.
func waitAdmitted(t *testing.T, f *fixture, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for len(f.api.slots) < n {
		select {
		case <-ctx.Done():
			t.Fatalf("%d uploads admitted, want %d", len(f.api.slots), n)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// TestUploadsPastTheBoundAnswered429 holds the only upload slot with an
// upload whose body is still arriving: the next upload is answered 429
// with Retry-After before its body is read, and once the first is done a
// new one is accepted (issue #18, item 4: no bound on concurrent uploads).
func TestUploadsPastTheBoundAnswered429(t *testing.T) {
	f := newFixture(t, fixtureOpts{maxConcurrent: 1})
	log := gosecLog(t)
	pw, first := heldUpload(t, f)
	if _, err := pw.Write(log[:100]); err != nil {
		t.Fatal(err)
	}
	waitAdmitted(t, f, 1)

	// Another repository, so that it would not wait for the first's lock.
	code, b, h := do(t, http.MethodPost, f.url+"/v1/sarif?repository=acme/other", nil, sarifHeaders(goodToken))
	if code != http.StatusTooManyRequests || h.Get("Retry-After") == "" || h.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("an upload past the bound: %d, Retry-After %q, %s", code, h.Get("Retry-After"), b)
	}
	var p Problem
	if err := json.Unmarshal(b, &p); err != nil || p.Detail == "" {
		t.Errorf("problem %s: want a reason", b)
	}

	if _, err := pw.Write(log[100:]); err != nil {
		t.Fatal(err)
	}
	_ = pw.Close()
	if code := <-first; code != http.StatusAccepted {
		t.Fatalf("the held upload: %d, want 202", code)
	}
	f.mustUpload(t, uploadQuery+"&version=9", log)
}

// trickle is a body that sends one byte every interval until ctx ends.
type trickle struct {
	ctx      context.Context
	interval time.Duration
	sent     int
}

func (r *trickle) Read(p []byte) (int, error) {
	select {
	case <-r.ctx.Done():
		return 0, r.ctx.Err()
	case <-time.After(r.interval):
	}
	if len(p) == 0 {
		return 0, nil
	}
	p[0] = ' '
	r.sent++
	return 1, nil
}

// TestTrickledBodyIsCutOff sends a body one byte at a time, for ever: the
// server ends the request at the body read deadline (408), where it used
// to hold the upload as long as the client trickled, and the next upload
// passes.
func TestTrickledBodyIsCutOff(t *testing.T) {
	f := newFixture(t, fixtureOpts{bodyReadTimeout: 500 * time.Millisecond})
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	body := &trickle{ctx: ctx, interval: 20 * time.Millisecond}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.url+"/v1/sarif"+uploadQuery, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range sarifHeaders(goodToken) {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if ctx.Err() != nil {
		t.Fatalf("the trickled body was not cut off: %d bytes sent in 60s", body.sent)
	}
	if err == nil {
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusRequestTimeout {
			t.Errorf("status %d, want 408", resp.StatusCode)
		}
	} else {
		t.Logf("the server closed the connection mid-body after %d bytes: %v", body.sent, err)
	}
	f.mustUpload(t, uploadQuery, gosecLog(t))
}
