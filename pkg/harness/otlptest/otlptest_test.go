package otlptest

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
)

func TestReceiverCollectsSpansFromTheOTLPExporter(t *testing.T) {
	r, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", r.Endpoint)
	exp, err := otlptracehttp.New(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp),
		sdktrace.WithResource(resource.NewWithAttributes(semconv.SchemaURL, semconv.ServiceName("unit"))))
	ctx, parent := tp.Tracer("t").Start(context.Background(), "parent")
	_, child := tp.Tracer("t").Start(ctx, "child")
	child.End()
	parent.End()
	if err := tp.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	spans := r.Trace(parent.SpanContext().TraceID().String())
	if len(spans) != 2 {
		t.Fatalf("received %d spans of the trace, want 2: %+v", len(spans), r.Spans())
	}
	for _, s := range spans {
		if s.Name == "child" {
			if got := Path(spans, s); len(got) != 2 || got[0] != "unit:parent" || got[1] != "unit:child" {
				t.Errorf("path = %v", got)
			}
		}
	}
}
