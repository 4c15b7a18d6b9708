package service

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
)

// SetupOTel installs the global tracer provider and the W3C propagators.
//
// The provider is the OpenTelemetry SDK's, installed even when nothing is
// exported, so every request and event handled gets a valid span context:
// published events carry a traceparent and log lines a trace_id (see
// NewLogger). Its sampler follows OTEL_TRACES_SAMPLER and
// OTEL_TRACES_SAMPLER_ARG (default parentbased_always_on).
//
// The exporter is chosen by autoexport from the standard variables:
// OTEL_TRACES_EXPORTER=otlp (configured by the OTEL_EXPORTER_OTLP_*
// variables, OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf or grpc), console or
// none. With OTEL_TRACES_EXPORTER unset, spans go over OTLP when an
// OTLP endpoint is set (OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) and nowhere otherwise — see
// exportByDefault. The SDK and the exporters read the process environment;
// getenv only answers exportByDefault. The returned function flushes and
// stops the provider.
func SetupOTel(ctx context.Context, name string, getenv func(string) string) (func(context.Context) error, error) {
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	exporter, err := autoexport.NewSpanExporter(ctx, autoexport.WithFallbackSpanExporter(
		func(ctx context.Context) (sdktrace.SpanExporter, error) {
			if !exportByDefault(getenv) {
				return nil, nil
			}
			// With OTEL_TRACES_EXPORTER unset autoexport's own default
			// is otlp.
			return autoexport.NewSpanExporter(ctx)
		}))
	if err != nil {
		return nil, fmt.Errorf("traces exporter: %w", err)
	}
	// The service's name, unless OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES
	// say otherwise (later options win).
	res, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithAttributes(semconv.ServiceName(name)),
		resource.WithFromEnv(),
	)
	if err != nil {
		return nil, fmt.Errorf("otel resource: %w", err)
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	if exporter != nil && !autoexport.IsNoneSpanExporter(exporter) {
		opts = append(opts, sdktrace.WithBatcher(exporter))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	otel.SetTracerProvider(tp)
	return func(ctx context.Context) error {
		return errors.Join(tp.ForceFlush(ctx), tp.Shutdown(ctx))
	}, nil
}

// exportByDefault says whether spans are exported (over OTLP) when
// OTEL_TRACES_EXPORTER is unset: only when an OTLP endpoint is configured,
// so a service that was told nothing about tracing sends nothing to a
// collector that is not there.
func exportByDefault(getenv func(string) string) bool {
	return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}
