package events

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// The CloudEvents distributed-tracing extension carries W3C trace context.
const (
	extTraceparent = "traceparent"
	extTracestate  = "tracestate"
)

const instrumentationName = "github.com/stateguard/stateguard/pkg/events"

var traceContext = propagation.TraceContext{}

// eventCarrier adapts an event's extensions to a TextMapCarrier.
type eventCarrier struct{ ev *Event }

func (c eventCarrier) Get(key string) string {
	v, ok := c.ev.Extensions()[key]
	if !ok {
		return ""
	}
	s, _ := v.(string)
	return s
}

func (c eventCarrier) Set(key, value string) { c.ev.SetExtension(key, value) }

func (c eventCarrier) Keys() []string { return []string{extTraceparent, extTracestate} }

// InjectTrace writes the span context of ctx into ev's traceparent and
// tracestate extensions.
func InjectTrace(ctx context.Context, ev *Event) {
	traceContext.Inject(ctx, eventCarrier{ev})
}

// ExtractTrace returns ctx carrying the remote span context found in ev.
func ExtractTrace(ctx context.Context, ev Event) context.Context {
	return traceContext.Extract(ctx, eventCarrier{&ev})
}

// messaging semantic-convention attribute keys (OTel semconv 1.3x).
const (
	attrSystem        = attribute.Key("messaging.system")
	attrDestination   = attribute.Key("messaging.destination.name")
	attrOperation     = attribute.Key("messaging.operation.type")
	attrOperationNm   = attribute.Key("messaging.operation.name")
	attrMessageID     = attribute.Key("messaging.message.id")
	attrConsumer      = attribute.Key("messaging.consumer.group.name")
	attrBodySize      = attribute.Key("messaging.message.body.size")
	attrCEType        = attribute.Key("cloudevents.event_type")
	attrCEID          = attribute.Key("cloudevents.event_id")
	attrCESource      = attribute.Key("cloudevents.event_source")
	attrDeliveryCount = attribute.Key("messaging.nats.delivery_count")
)

func tracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	return tp.Tracer(instrumentationName)
}

func eventAttrs(ev Event, subject string) []attribute.KeyValue {
	return []attribute.KeyValue{
		attrSystem.String("nats"),
		attrDestination.String(subject),
		attrMessageID.String(ev.ID()),
		attrCEID.String(ev.ID()),
		attrCEType.String(ev.Type()),
		attrCESource.String(ev.Source()),
		attrBodySize.Int(len(ev.Data())),
	}
}
