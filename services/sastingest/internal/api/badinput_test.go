package api

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/stateguard/stateguard/pkg/harness/natstest"
)

// gzipMember compresses b as one gzip member; members concatenated are
// one valid gzip stream.
func gzipMember(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return buf.Bytes()
}

// repeatReader yields data n times, generated as it is read: a large body
// is never materialised.
type repeatReader struct {
	data []byte
	n    int
	off  int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	c := copy(p, r.data[r.off:])
	r.off += c
	if r.off == len(r.data) {
		r.off = 0
		r.n--
	}
	return c, nil
}

// gzipBomb is a gzip stream that inflates to a SARIF head followed by
// size bytes of white space (valid JSON, so only the size limit stops it).
func gzipBomb(t testing.TB, size int64) io.Reader {
	const mb = 1 << 20
	head := gzipMember(t, []byte(`{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"bomb"}},"results":[`))
	spaces := gzipMember(t, bytes.Repeat([]byte(" "), mb))
	tail := gzipMember(t, []byte(`]}]}`))
	return io.MultiReader(bytes.NewReader(head), &repeatReader{data: spaces, n: int(size / mb)}, bytes.NewReader(tail))
}

func TestBadInputThenGoodUpload(t *testing.T) {
	f := newFixture(t, fixtureOpts{maxBody: 8 << 20, maxUncompressed: 32 << 20})
	good := gosecLog(t)
	gz := gzipBytes(t, good)
	url := f.url + "/v1/sarif" + uploadQuery
	hdr := func(token, ct, ce string) map[string]string {
		h := map[string]string{"Content-Type": ct}
		if token != "" {
			h["Authorization"] = "Bearer " + token
		}
		if ce != "" {
			h["Content-Encoding"] = ce
		}
		return h
	}
	const sarifCT = "application/sarif+json"
	tests := []struct {
		name     string
		url      string
		body     func() io.Reader
		h        map[string]string
		want     int
		wantPath string
		// maxRead bounds the body bytes the server may read: past a limit
		// it answers without reading the rest.
		maxRead float64
	}{
		{"no token", url, func() io.Reader { return bytes.NewReader(good) }, hdr("", sarifCT, ""), http.StatusUnauthorized, "", 0},
		{"wrong token", url, func() io.Reader { return bytes.NewReader(good) }, hdr("not-a-token", sarifCT, ""), http.StatusUnauthorized, "", 0},
		{"a token for other repositories", f.url + "/v1/sarif?repository=other/repo", func() io.Reader { return bytes.NewReader(good) }, hdr(goodToken, sarifCT, ""), http.StatusForbidden, "", 0},
		{"wrong content type", url, func() io.Reader { return bytes.NewReader(good) }, hdr(goodToken, "text/plain", ""), http.StatusUnsupportedMediaType, "", 0},
		{"unknown content encoding", url, func() io.Reader { return bytes.NewReader(good) }, hdr(goodToken, sarifCT, "br"), http.StatusUnsupportedMediaType, "", 0},
		{"an image without a digest", f.url + "/v1/sarif?repository=acme/shop&image=shop:latest", func() io.Reader { return bytes.NewReader(good) }, hdr(goodToken, sarifCT, ""), http.StatusBadRequest, "", 0},
		{"2 GB gzip bomb", url, func() io.Reader { return gzipBomb(t, 2<<30) }, hdr(goodToken, sarifCT, "gzip"), http.StatusRequestEntityTooLarge, "", 1 << 20},
		{"body over the compressed limit", url, func() io.Reader { return &repeatReader{data: bytes.Repeat([]byte(" "), 1<<20), n: 64} }, hdr(goodToken, sarifCT, ""), http.StatusRequestEntityTooLarge, "", 9 << 20},
		{"a declared length over the limit is refused unread", url, func() io.Reader { return bytes.NewReader(make([]byte, 9<<20)) }, hdr(goodToken, sarifCT, ""), http.StatusRequestEntityTooLarge, "", 0.5},
		{"truncated gzip", url, func() io.Reader { return bytes.NewReader(gz[:len(gz)/2]) }, hdr(goodToken, sarifCT, "gzip"), http.StatusBadRequest, "", 0},
		{"not gzip at all", url, func() io.Reader { return bytes.NewReader(good) }, hdr(goodToken, sarifCT, "gzip"), http.StatusBadRequest, "", 0},
		{"truncated JSON", url, func() io.Reader { return bytes.NewReader(good[:bytes.Index(good, []byte(`"G101"`))]) }, hdr(goodToken, sarifCT, ""), http.StatusBadRequest, "$.runs[0].results[", 0},
		{"JSON that is not SARIF", url, func() io.Reader { return bytes.NewReader([]byte(`{"hello":"world"}`)) }, hdr(goodToken, "application/json", ""), http.StatusBadRequest, "$.version", 0},
		{"wrong version", url, func() io.Reader {
			return bytes.NewReader(bytes.Replace(good, []byte(`"version": "2.1.0"`), []byte(`"version": "2.0.0"`), 1))
		}, hdr(goodToken, sarifCT, ""), http.StatusBadRequest, "$.version", 0},
		{"not JSON", url, func() io.Reader { return bytes.NewReader([]byte("Check: CKV_AWS_1 FAILED")) }, hdr(goodToken, sarifCT, ""), http.StatusBadRequest, "$", 0},
	}
	accepted := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			read := testutil.ToFloat64(f.api.opts.Metrics.bytes.WithLabelValues(endpointSARIF))
			code, b, h := do(t, http.MethodPost, tt.url, tt.body(), tt.h)
			if code != tt.want {
				t.Fatalf("status %d (%s), want %d", code, b, tt.want)
			}
			if read = testutil.ToFloat64(f.api.opts.Metrics.bytes.WithLabelValues(endpointSARIF)) - read; tt.maxRead > 0 && read > tt.maxRead {
				t.Errorf("the server read %.0f body bytes, want at most %.0f", read, tt.maxRead)
			}
			if h.Get("Content-Type") != "application/problem+json" {
				t.Errorf("Content-Type %q, want application/problem+json", h.Get("Content-Type"))
			}
			var p Problem
			if err := json.Unmarshal(b, &p); err != nil || p.Status != tt.want || p.Title == "" || p.Type == "" {
				t.Errorf("problem = %s (%v)", b, err)
			}
			if tt.wantPath != "" && !strings.HasPrefix(p.JSONPath, tt.wantPath) {
				t.Errorf("json_path = %q, want %q (detail %q)", p.JSONPath, tt.wantPath, p.Detail)
			}
			// A bad upload never affects the next good one.
			q := strings.Replace(uploadQuery, "version=1.4.2", "version=1.4."+strconv.Itoa(accepted), 1)
			accepted++
			f.mustUpload(t, q, good)
			if n := f.eventsStored(t); n != uint64(accepted) {
				t.Errorf("events = %d, want %d: only good uploads publish", n, accepted)
			}
		})
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestNATSStoppedMidUpload(t *testing.T) {
	dir, port := t.TempDir(), freePort(t)
	f := newFixture(t, fixtureOpts{natsOpts: []natstest.Option{natstest.WithStoreDir(dir), natstest.WithPort(port)}})
	good := gosecLog(t)

	pr, pw := io.Pipe()
	go func() {
		_, _ = pw.Write(good[:len(good)/2])
		// NATS goes away while the body is still being sent.
		f.nats.Shutdown()
		f.nats.WaitForShutdown()
		_, _ = pw.Write(good[len(good)/2:])
		_ = pw.Close()
	}()
	code, b, h := do(t, http.MethodPost, f.url+"/v1/sarif"+uploadQuery, pr, sarifHeaders(goodToken))
	if code != http.StatusServiceUnavailable || h.Get("Retry-After") == "" {
		t.Fatalf("status %d Retry-After %q (%s), want 503 with Retry-After", code, h.Get("Retry-After"), b)
	}
	if code, _, _ := f.upload(t, uploadQuery, good, true); code != http.StatusServiceUnavailable {
		t.Errorf("upload while NATS is down: %d, want 503", code)
	}

	// NATS comes back on the same port and store: the next upload succeeds.
	natstest.Run(t, natstest.WithStoreDir(dir), natstest.WithPort(port))
	deadline := time.Now().Add(20 * time.Second)
	for f.client.Ready(t.Context()) != nil {
		if time.Now().After(deadline) {
			t.Fatal("client did not reconnect")
		}
		time.Sleep(50 * time.Millisecond)
	}
	a := f.mustUpload(t, uploadQuery, good)
	if n := f.eventsStored(t); n != 1 {
		t.Errorf("events = %d, want 1", n)
	}
	_, p := f.lastEvent(t)
	if p.UploadID != a.ID || p.ResultsTotal != 12 {
		t.Errorf("event = %+v", p)
	}
}
