package service

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"go.opentelemetry.io/otel/trace"
)

// NewLogger returns a JSON logger at the given level (debug, info, warn,
// error) tagged with the service name. A line logged with a context that
// carries a span (InfoContext(ctx, …) in a handler) gets the span's
// trace_id and span_id (see TraceHandler).
func NewLogger(w io.Writer, level, name string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToLower(level))); err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})
	return slog.New(TraceHandler(h)).With("service", name), nil
}

// Log keys of the trace context, as the OpenTelemetry log data model names
// them.
const (
	LogTraceID = "trace_id"
	LogSpanID  = "span_id"
)

// TraceHandler wraps h so that a record logged with a context carrying a
// valid span context gets trace_id and span_id attributes, unless the
// record already has a trace_id. Records logged without a context (Info
// rather than InfoContext) are passed on as they are.
func TraceHandler(h slog.Handler) slog.Handler {
	return traceHandler{h}
}

type traceHandler struct{ slog.Handler }

// Handle adds the trace context of ctx to r.
func (h traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() && !hasAttr(r, LogTraceID) {
		r = r.Clone()
		r.AddAttrs(slog.String(LogTraceID, sc.TraceID().String()), slog.String(LogSpanID, sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h traceHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return traceHandler{h.Handler.WithAttrs(attrs)}
}

func (h traceHandler) WithGroup(name string) slog.Handler {
	return traceHandler{h.Handler.WithGroup(name)}
}

func hasAttr(r slog.Record, key string) bool {
	found := false
	r.Attrs(func(a slog.Attr) bool {
		found = a.Key == key
		return !found
	})
	return found
}
