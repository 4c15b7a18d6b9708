package api

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/harness/natstest"
	"github.com/stateguard/stateguard/services/sastingest/internal/auth"
	"github.com/stateguard/stateguard/services/sastingest/internal/ingest"
)

const (
	goodToken = "ci-token-for-acme"
	anyToken  = "ci-token-any"
)

type fixture struct {
	nats     *server.Server
	client   *events.Client
	pipeline *ingest.Pipeline
	api      *Server
	url      string
	secrets  string
	spoolDir string        // where the server spools webhook bodies
	read     *atomic.Int64 // bytes the server read from its connections
}

// countingListener counts the bytes read from every connection it accepts:
// what the server took off the wire, whatever the kernel's buffers held.
type countingListener struct {
	net.Listener
	read *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countingConn{Conn: c, read: l.read}, nil
}

type countingConn struct {
	net.Conn
	read *atomic.Int64
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}

type fixtureOpts struct {
	maxBody, maxUncompressed int64
	maxWebhookBody           int64
	maxConcurrent            int
	bodyReadTimeout          time.Duration
	natsOpts                 []natstest.Option
	now                      func() time.Time
	gate                     chan struct{}
}

func newFixture(t testing.TB, o fixtureOpts) *fixture {
	t.Helper()
	if o.maxBody == 0 {
		o.maxBody = 64 << 20
	}
	if o.maxUncompressed == 0 {
		o.maxUncompressed = 256 << 20
	}
	f := &fixture{read: new(atomic.Int64)}
	f.nats = natstest.Run(t, o.natsOpts...)
	f.client = natstest.Client(t, f.nats, events.WithSource("/stateguard/sastingest"), events.WithPublishRetry(2, 50*time.Millisecond), events.WithAckTimeout(2*time.Second))
	ctx := t.Context()
	var err error
	f.pipeline, err = ingest.New(ctx, f.client, ingest.Options{MaxUncompressed: o.maxUncompressed, SpoolDir: t.TempDir(), StoreTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tokensPath := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokensPath, []byte(goodToken+" acme/*\n"+anyToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tokens, err := auth.LoadTokens(tokensPath)
	if err != nil {
		t.Fatal(err)
	}
	f.secrets = filepath.Join(dir, "secrets")
	if err := os.WriteFile(f.secrets, []byte("github gh-secret\ngitlab whsec_c3RhbmRhcmQta2V5\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	secrets, err := auth.LoadSecrets(f.secrets)
	if err != nil {
		t.Fatal(err)
	}
	replay, err := auth.NewReplay(ctx, f.client.JetStream(), time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	f.spoolDir = t.TempDir()
	f.api = New(Options{Pipeline: f.pipeline, Tokens: tokens, Secrets: secrets, Replay: replay, MaxBody: o.maxBody, MaxWebhookBody: o.maxWebhookBody,
		SpoolDir: f.spoolDir, MaxConcurrent: o.maxConcurrent, BodyReadTimeout: o.bodyReadTimeout, Now: o.now, GitHubRetry: 5 * time.Second, gate: o.gate})
	mux := http.NewServeMux()
	f.api.Register(mux)
	hs := httptest.NewUnstartedServer(mux)
	hs.Listener = countingListener{Listener: hs.Listener, read: f.read}
	hs.Start()
	t.Cleanup(func() {
		hs.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = f.api.Close(ctx)
	})
	f.url = hs.URL
	return f
}

// do sends a request and returns the status and the body.
func do(t *testing.T, method, url string, body io.Reader, h map[string]string) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

func sarifHeaders(token string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + token, "Content-Type": "application/sarif+json"}
}

const uploadQuery = "?repository=acme/shop&commit_sha=0123456789abcdef0123456789abcdef01234567&ref=refs/heads/main&app=shop&namespace=prod&version=1.4.2&image=registry.example/shop@sha256:aaaa&category=gosec&environment=production"

// upload posts a SARIF log to /v1/sarif and returns the status and answer.
func (f *fixture) upload(t *testing.T, query string, body []byte, gz bool) (int, Accepted, Problem) {
	t.Helper()
	h := sarifHeaders(goodToken)
	var r io.Reader = bytes.NewReader(body)
	if gz {
		h["Content-Encoding"] = "gzip"
		r = bytes.NewReader(gzipBytes(t, body))
	}
	code, b, _ := do(t, http.MethodPost, f.url+"/v1/sarif"+query, r, h)
	var a Accepted
	var p Problem
	if code == http.StatusAccepted {
		if err := json.Unmarshal(b, &a); err != nil {
			t.Fatalf("202 body %s: %v", b, err)
		}
	} else {
		_ = json.Unmarshal(b, &p)
	}
	return code, a, p
}

// mustUpload posts a log that must be accepted.
func (f *fixture) mustUpload(t *testing.T, query string, body []byte) Accepted {
	t.Helper()
	code, a, p := f.upload(t, query, body, true)
	if code != http.StatusAccepted {
		t.Fatalf("good upload: status %d (%+v), want 202", code, p)
	}
	return a
}

func gzipBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// eventsStored counts the events in the SARIF stream.
func (f *fixture) eventsStored(t *testing.T) uint64 {
	t.Helper()
	s, err := f.client.JetStream().Stream(t.Context(), events.StreamSARIF)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// lastEvent returns the last sarif.uploaded event's payload.
func (f *fixture) lastEvent(t *testing.T) (events.Event, events.SARIFUploaded) {
	t.Helper()
	s, err := f.client.JetStream().Stream(t.Context(), events.StreamSARIF)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(t.Context(), events.SubjectOf(events.TypeSARIFUploaded))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := events.DecodeMsg(&nats.Msg{Subject: m.Subject, Header: m.Header, Data: m.Data})
	if err != nil {
		t.Fatal(err)
	}
	p, err := events.Decode[events.SARIFUploaded](ev)
	if err != nil {
		t.Fatal(err)
	}
	return ev, p
}

func (f *fixture) storedLog(t *testing.T, name string) []byte {
	t.Helper()
	obs, err := f.client.JetStream().ObjectStore(t.Context(), ingest.LogsBucket)
	if err != nil {
		t.Fatal(err)
	}
	b, err := obs.GetBytes(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var _ = jetstream.ErrKeyNotFound

// testdataDir is services/sastingest/testdata.
func testdataDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata")
}

func gosecLog(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testdataDir(), "gosec-sampleapp.sarif"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
