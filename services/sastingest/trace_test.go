package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/harness/natstest"
)

// TestAnUploadContinuesTheScannersTrace posts a SARIF log with the W3C
// traceparent a scanner's CI step sends, with no OTEL_* variable set
// (export off): the sarif.uploaded event continues that trace.
func TestAnUploadContinuesTheScannersTrace(t *testing.T) {
	for _, k := range []string{"OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_TRACES_SAMPLER"} {
		t.Setenv(k, "")
	}
	srv := natstest.Run(t)
	base := startServiceOn(t, srv)

	client, err := events.Connect(t.Context(), events.ConnConfig{URL: srv.ClientURL()})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close(context.Background())
	got := make(chan events.Event, 1)
	sub, err := client.Consume(t.Context(), events.ConsumerConfig{
		Stream: events.StreamOf(events.TypeSARIFUploaded), Name: "trace-test",
		Subjects: []string{events.SubjectOf(events.TypeSARIFUploaded)},
	}, func(_ context.Context, ev events.Event) error {
		select {
		case got <- ev:
		default:
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop(context.Background())

	log, err := os.ReadFile("testdata/gosec-sampleapp.sarif")
	if err != nil {
		t.Fatal(err)
	}
	const scannerTrace, scannerSpan = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/v1/sarif?repository=acme/shop&app=shop&namespace=shop", bytes.NewReader(log))
	req.Header.Set("Authorization", "Bearer t0ken")
	req.Header.Set("Content-Type", "application/sarif+json")
	req.Header.Set("Traceparent", "00-"+scannerTrace+"-"+scannerSpan+"-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("upload: %d", resp.StatusCode)
	}
	select {
	case ev := <-got:
		sc := trace.SpanContextFromContext(events.ExtractTrace(context.Background(), ev))
		// The same trace, continued by spans of sastingest's own (the
		// request's, the publish's): not the scanner's span passed on.
		if sc.TraceID().String() != scannerTrace || sc.SpanID().String() == scannerSpan {
			t.Errorf("sarif.uploaded carries traceparent %v, want trace %s (the scanner's) continued by a span of sastingest's", ev.Extensions()["traceparent"], scannerTrace)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no sarif.uploaded event")
	}
}
