package service_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/harness/logtest"
	"github.com/stateguard/stateguard/pkg/harness/natstest"
	"github.com/stateguard/stateguard/pkg/harness/otlptest"
	"github.com/stateguard/stateguard/pkg/runtime/envflag"
	"github.com/stateguard/stateguard/pkg/runtime/service"
)

// setupOTel runs SetupOTel with env as the whole OTEL_* environment (the
// SDK and the exporters read the process environment, so it is set too)
// and stops the provider with the test.
func setupOTel(t *testing.T, env map[string]string) func(context.Context) error {
	t.Helper()
	for _, k := range []string{
		"OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
		"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG", "OTEL_SERVICE_NAME",
	} {
		t.Setenv(k, env[k])
	}
	shutdown, err := service.SetupOTel(t.Context(), "unit", func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = shutdown(context.Background()) })
	return shutdown
}

func TestSetupOTelExportsAsTheStandardVariablesSay(t *testing.T) {
	for _, tc := range []struct {
		name   string
		env    func(endpoint string) map[string]string
		spans  int
		sample bool
	}{
		{"OTEL_TRACES_EXPORTER=otlp and the endpoint export over OTLP/HTTP", func(ep string) map[string]string {
			return map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": ep}
		}, 1, true},
		{"an OTLP endpoint alone exports over OTLP", func(ep string) map[string]string {
			return map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": ep}
		}, 1, true},
		{"OTEL_TRACES_EXPORTER=none exports nothing although an endpoint is set", func(ep string) map[string]string {
			return map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": ep}
		}, 0, true},
		{"OTEL_TRACES_SAMPLER=always_off exports nothing and still gives valid span contexts", func(ep string) map[string]string {
			return map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": ep, "OTEL_TRACES_SAMPLER": "always_off"}
		}, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, err := otlptest.Start()
			if err != nil {
				t.Fatal(err)
			}
			defer rec.Close()
			shutdown := setupOTel(t, tc.env(rec.Endpoint))
			_, span := otel.Tracer("t").Start(context.Background(), "work")
			sc := span.SpanContext()
			span.End()
			if !sc.IsValid() || sc.IsSampled() != tc.sample {
				t.Errorf("span context %v (sampled %v), want a valid one, sampled %v", sc, sc.IsSampled(), tc.sample)
			}
			if err := shutdown(t.Context()); err != nil {
				t.Fatal(err)
			}
			spans := rec.Spans()
			if len(spans) != tc.spans {
				t.Fatalf("received %+v, want %d span(s)", spans, tc.spans)
			}
			for _, s := range spans {
				if s.Service != "unit" || s.Name != "work" || s.TraceID != sc.TraceID().String() {
					t.Errorf("received %+v, want span work of service unit in trace %s", s, sc.TraceID())
				}
			}
		})
	}
}

func TestSetupOTelRefusesAnUnknownExporter(t *testing.T) {
	t.Setenv("OTEL_TRACES_EXPORTER", "zipkin-by-carrier-pigeon")
	if _, err := service.SetupOTel(t.Context(), "unit", func(string) string { return "" }); err == nil {
		t.Error("an unknown OTEL_TRACES_EXPORTER was accepted")
	}
}

func TestSetupOTelGivesValidSpanContextsWithExportOff(t *testing.T) {
	setupOTel(t, nil)
	_, span := otel.Tracer("t").Start(context.Background(), "work")
	defer span.End()
	if !span.SpanContext().IsValid() {
		t.Error("no valid span context without an exporter: events would carry no traceparent, logs no trace_id")
	}
}

// jsonLines returns the JSON log lines written to b so far.
func jsonLines(t *testing.T, b *logtest.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

// TestAnEventsFlowIsTracedWithExportOff runs a service's runtime with no
// OTEL_* variable: an event published outside any request carries a valid
// traceparent, and the lines logged while it is handled (by the handler
// and by the consumer, which retries it once) carry its trace_id.
func TestAnEventsFlowIsTracedWithExportOff(t *testing.T) {
	setupOTel(t, nil)
	srv := natstest.Run(t)
	var common service.Common
	set := envflag.New(flag.NewFlagSet("svc", flag.ContinueOnError), func(k string) string {
		if k == "NATS_URL" {
			return srv.ClientURL()
		}
		return ""
	})
	common.Register(set, "127.0.0.1:0")
	if err := set.Parse(nil); err != nil {
		t.Fatal(err)
	}
	var logs logtest.Buffer
	log, err := service.NewLogger(&logs, "info", "test")
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	client, err := common.Connect(ctx, "test", log, service.NewOps().Registry)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close(context.Background())

	got := make(chan events.Event, 1)
	var calls atomic.Int32
	sub, err := client.Consume(ctx, events.ConsumerConfig{
		Stream: events.StreamDecision, Name: "trace-test",
		Subjects:   []string{events.SubjectOf(events.TypeRestoreRecommended)},
		RetryDelay: 10 * time.Millisecond,
	}, func(ctx context.Context, ev events.Event) error {
		log.InfoContext(ctx, "handling", "event_id", ev.ID())
		if calls.Add(1) == 1 {
			return errors.New("not yet")
		}
		got <- ev
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop(context.Background())
	ev := events.MustNewEvent(events.TypeRestoreRecommended, "/stateguard/test", "restore-1", events.RestoreRecommended{
		Incident: "inc-1", Namespace: "shop", App: "db", PVC: "db-data", VolumeSnapshot: "db-data-1",
	})
	if err := client.Publish(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	var in events.Event
	select {
	case in = <-got:
	case <-time.After(20 * time.Second):
		t.Fatal("the event was not delivered twice")
	}
	tp, _ := in.Extensions()["traceparent"].(string)
	sc := trace.SpanContextFromContext(events.ExtractTrace(context.Background(), in))
	if !sc.IsValid() {
		t.Fatalf("the published event carries traceparent %q, want a valid W3C trace context", tp)
	}
	want := map[string]int{"handling": 2, "event will be retried": 1}
	for _, l := range jsonLines(t, &logs) {
		msg, _ := l["msg"].(string)
		if _, ok := want[msg]; !ok {
			continue
		}
		want[msg]--
		if l[service.LogTraceID] != sc.TraceID().String() || l[service.LogSpanID] == nil || l[service.LogSpanID] == "" {
			t.Errorf("log line %v: trace_id %v, want the event's %s (and a span_id)", l, l[service.LogTraceID], sc.TraceID())
		}
	}
	for msg, n := range want {
		if n != 0 {
			t.Errorf("%d lines %q missing", n, msg)
		}
	}
}
