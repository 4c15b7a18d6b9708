package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
)

func sarifEvent(t *testing.T, id string, log []byte) cloudevents.Event {
	t.Helper()
	ev := cloudevents.NewEvent()
	ev.SetID(id)
	ev.SetSource("https://ci.example/pipelines/42")
	ev.SetType("com.example.ci.sarif")
	ev.SetExtension(ExtRepository, "acme/shop")
	ev.SetExtension(ExtRef, "refs/heads/main")
	ev.SetExtension(ExtApp, "shop")
	ev.SetExtension(ExtImages, "registry.example/shop@sha256:bbbb")
	if err := ev.SetData("application/sarif+json", log); err != nil {
		t.Fatal(err)
	}
	return ev
}

// postEvent sends ev with the sdk's HTTP binding in the given encoding.
func postEvent(t *testing.T, url string, ev cloudevents.Event, structured bool, token string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if structured {
		ctx = binding.WithForceStructured(ctx)
	} else {
		ctx = binding.WithForceBinary(ctx)
	}
	if err := cehttp.WriteRequest(ctx, binding.ToMessage(&ev), req); err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	return resp.StatusCode, buf.Bytes()
}

func TestCloudEvents(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	log := gosecLog(t)
	for i, structured := range []bool{false, true} {
		name := map[bool]string{false: "binary", true: "structured"}[structured]
		t.Run(name, func(t *testing.T) {
			ev := sarifEvent(t, name, log)
			ev.SetExtension(ExtAppVersion, name) // a distinct upload per mode
			if code, _ := postEvent(t, f.url+"/v1/events", ev, structured, ""); code != http.StatusUnauthorized {
				t.Errorf("without a token: %d, want 401", code)
			}
			code, b := postEvent(t, f.url+"/v1/events", ev, structured, goodToken)
			if code != http.StatusAccepted {
				t.Fatalf("%d %s, want 202", code, b)
			}
			var a Accepted
			_ = json.Unmarshal(b, &a)
			_, p := f.lastEvent(t)
			if p.UploadID != a.ID || p.Repository != "acme/shop" || p.App != "shop" || p.Version != name || p.ResultsTotal != 12 ||
				len(p.Images) != 1 || p.Images[0] != "registry.example/shop@sha256:bbbb" {
				t.Errorf("event = %+v", p)
			}
			if n := f.eventsStored(t); n != uint64(i+1) {
				t.Errorf("events = %d, want %d", n, i+1)
			}
			bad := sarifEvent(t, name+"-bad", []byte(`{"version":"1.0.0","runs":[]}`))
			if code, _ := postEvent(t, f.url+"/v1/events", bad, structured, goodToken); code != http.StatusBadRequest {
				t.Errorf("SARIF 1.0.0 as data: %d, want 400", code)
			}
		})
	}
	code, _, _ := do(t, http.MethodPost, f.url+"/v1/events", bytes.NewReader(log), sarifHeaders(goodToken))
	if code != http.StatusBadRequest {
		t.Errorf("a plain POST without ce-* headers: %d, want 400", code)
	}
}
