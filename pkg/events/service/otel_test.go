package service_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel"

	"github.com/stateguard/stateguard/pkg/events/service"
	"github.com/stateguard/stateguard/pkg/harness/otlptest"
)

func TestSetupOTelExportsToTheOTLPEndpoint(t *testing.T) {
	rec, err := otlptest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	env := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": rec.Endpoint}
	for k, v := range env {
		t.Setenv(k, v) // the OTLP exporter reads the process environment
	}
	shutdown, err := service.SetupOTel(t.Context(), "unit", func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	_, span := otel.Tracer("t").Start(context.Background(), "work")
	span.End()
	if err := shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	spans := rec.Spans()
	if len(spans) != 1 || spans[0].Service != "unit" || spans[0].Name != "work" {
		t.Errorf("received %+v, want one span work of service unit", spans)
	}
}

func TestSetupOTelExportsNothingByDefault(t *testing.T) {
	shutdown, err := service.SetupOTel(t.Context(), "unit", func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(t.Context())
	_, span := otel.Tracer("t").Start(context.Background(), "work")
	if span.SpanContext().IsValid() && span.IsRecording() {
		t.Error("spans are recorded although no exporter is configured")
	}
	span.End()
}
