// Package otlptest is an OTLP/HTTP trace receiver for tests: services
// started as processes export their spans to it (OTEL_EXPORTER_OTLP_ENDPOINT)
// and the test asserts the trace they form.
package otlptest
