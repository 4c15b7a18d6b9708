package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/trace"

	"github.com/stateguard/stateguard/pkg/runtime/service"
)

func TestTraceHandlerAddsTheSpanOfTheContext(t *testing.T) {
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:     trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
		TraceFlags: trace.FlagsSampled,
	})
	traced := trace.ContextWithSpanContext(context.Background(), sc)
	for _, tc := range []struct {
		name string
		log  func(*slog.Logger)
		want map[string]any
	}{
		{"a line logged with a span's context carries its trace_id and span_id", func(l *slog.Logger) {
			l.InfoContext(traced, "m", "k", "v")
		}, map[string]any{"msg": "m", "k": "v", "service": "unit", "trace_id": sc.TraceID().String(), "span_id": sc.SpanID().String()}},
		{"a line logged without a context has none", func(l *slog.Logger) {
			l.Info("m", "k", "v")
		}, map[string]any{"msg": "m", "k": "v", "service": "unit"}},
		{"a trace_id the line has is kept", func(l *slog.Logger) {
			l.InfoContext(traced, "m", "trace_id", "given")
		}, map[string]any{"msg": "m", "service": "unit", "trace_id": "given"}},
		{"a logger derived with With keeps adding it", func(l *slog.Logger) {
			l.With("consumer", "c").WarnContext(traced, "m")
		}, map[string]any{"msg": "m", "service": "unit", "consumer": "c", "trace_id": sc.TraceID().String(), "span_id": sc.SpanID().String()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			l, err := service.NewLogger(&buf, "info", "unit")
			if err != nil {
				t.Fatal(err)
			}
			tc.log(l)
			var got map[string]any
			if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
				t.Fatalf("%q: %v", buf.String(), err)
			}
			delete(got, "time")
			delete(got, "level")
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("log line (-want +got):\n%s", diff)
			}
		})
	}
}
