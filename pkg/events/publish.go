package events

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Publisher makes events and stores them; *Client is one. A package that
// only publishes takes a Publisher, so its tests can record what it
// publishes. Publish returns once every event is stored, and a retried event
// with the same id is dropped by the stream's de-duplication (Nats-Msg-Id).
type Publisher interface {
	NewEvent(typ, id string, payload any) (Event, error)
	Publish(ctx context.Context, evs ...Event) error
}

var _ Publisher = (*Client)(nil)

// Publish stores events in JetStream. The events are sent asynchronously,
// bounded by the client's max pending, and Publish returns nil only once the
// server acknowledged every one of them, that is once each is stored (and,
// with sync_interval: always, on disk). Timeouts and "no responders" are
// retried with backoff; a retry carries the same Nats-Msg-Id, so it cannot
// store an event twice. Each event gets a producer span and the span's
// context in its traceparent extension.
//
// With sync_interval: always a single server writes each event to disk on
// its own; PublishBatch and Batcher write many with one sync.
func (c *Client) Publish(ctx context.Context, evs ...Event) error {
	out, err := c.prepare(ctx, evs)
	if err != nil {
		return err
	}
	return c.finish(out, c.sendEach(ctx, out))
}

// outgoing is one event on its way: its message and producer span.
type outgoing struct {
	msg    *nats.Msg
	typ    string
	stream string
	span   trace.Span
}

// prepare starts each event's producer span, puts the span's context in the
// event and encodes it. On an error no span is left open.
func (c *Client) prepare(ctx context.Context, evs []Event) ([]outgoing, error) {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	out := make([]outgoing, len(evs))
	for i := range evs {
		ev := evs[i]
		subject := SubjectOf(ev.Type())
		sctx, span := c.tracer.Start(ctx, "send "+subject, trace.WithSpanKind(trace.SpanKindProducer))
		if span.IsRecording() {
			span.SetAttributes(eventAttrs(ev, subject)...)
			span.SetAttributes(attrOperation.String("send"), attrOperationNm.String("send"))
		}
		if trace.SpanContextFromContext(sctx).IsValid() {
			ev = ev.Clone() // the caller's event stays as it was
			InjectTrace(sctx, &ev)
		}
		msg, err := Encode(ev)
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
			span.End()
			for j := range i {
				out[j].span.End()
			}
			return nil, fmt.Errorf("publish %s %s: %w", ev.Type(), ev.ID(), err)
		}
		out[i] = outgoing{msg: msg, typ: ev.Type(), stream: StreamOf(ev.Type()), span: span}
	}
	return out, nil
}

// finish ends the spans, counts the outcomes and joins the errors (errs is
// per event, nil entries for the stored ones).
func (c *Client) finish(out []outgoing, errs []error) error {
	var joined []error
	for i := range out {
		o := &out[i]
		if err := errs[i]; err != nil {
			c.metrics.publishFails.WithLabelValues(o.typ).Inc()
			o.span.RecordError(err)
			o.span.SetStatus(codes.Error, err.Error())
			joined = append(joined, fmt.Errorf("publish %s %s: %w", o.typ, o.msg.Header.Get(nats.MsgIdHdr), err))
		} else {
			c.metrics.published.WithLabelValues(o.typ).Inc()
		}
		o.span.End()
	}
	return errors.Join(joined...)
}

// sendEach publishes every message on its own, asynchronously, and waits
// for the acks; the result has one entry per message.
func (c *Client) sendEach(ctx context.Context, out []outgoing) []error {
	futs := make([]jetstream.PubAckFuture, len(out))
	errs := make([]error, len(out))
	for i := range out {
		futs[i], errs[i] = c.js.PublishMsgAsync(out[i].msg, jetstream.WithStallWait(c.stallWait))
	}
	for i := range out {
		errs[i] = c.await(ctx, out[i].msg, futs[i], errs[i])
	}
	return errs
}

// await waits for one publish's ack, re-sending on retryable errors.
func (c *Client) await(ctx context.Context, msg *nats.Msg, fut jetstream.PubAckFuture, sendErr error) error {
	backoff := c.publishBackoff
	for attempt := 0; ; attempt++ {
		err := sendErr
		if err == nil {
			select {
			case <-fut.Ok():
				return nil
			case err = <-fut.Err():
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if !retryable(err) || attempt >= c.publishRetries {
			return err
		}
		c.log.WarnContext(ctx, "publish retry", "subject", msg.Subject, "event_id", msg.Header.Get(nats.MsgIdHdr), "attempt", attempt+1, "error", err)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return ctx.Err()
		}
		backoff = min(backoff*2, 10*time.Second)
		fut, sendErr = c.js.PublishMsgAsync(msg, jetstream.WithStallWait(c.stallWait))
	}
}

func retryable(err error) bool {
	var apiErr *jetstream.APIError
	switch {
	case errors.As(err, &apiErr):
		// The server answered and refused: retrying cannot help, except
		// while a clustered stream has no leader.
		return apiErr.Code >= 500 || apiErr.ErrorCode == jetstream.JSErrCodeStreamNotFound
	case errors.Is(err, nats.ErrMaxPayload), errors.Is(err, nats.ErrBadSubject),
		errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, context.Canceled):
		return false
	}
	return true
}
