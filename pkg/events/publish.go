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

// Publish stores events in JetStream. The events are sent asynchronously,
// bounded by the client's max pending, and Publish returns nil only once the
// server acknowledged every one of them, that is once each is stored (and,
// with sync_interval: always, on disk). Timeouts and "no responders" are
// retried with backoff; a retry carries the same Nats-Msg-Id, so it cannot
// store an event twice. Each event gets a producer span and the span's
// context in its traceparent extension.
func (c *Client) Publish(ctx context.Context, evs ...Event) error {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return ErrClosed
	}
	type inflight struct {
		msg  *nats.Msg
		typ  string
		span trace.Span
		fut  jetstream.PubAckFuture
		err  error
	}
	fl := make([]inflight, len(evs))
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
				fl[j].span.End()
			}
			return fmt.Errorf("publish %s %s: %w", ev.Type(), ev.ID(), err)
		}
		fl[i] = inflight{msg: msg, typ: ev.Type(), span: span}
		fl[i].fut, fl[i].err = c.js.PublishMsgAsync(msg, jetstream.WithStallWait(c.stallWait))
	}
	var errs []error
	for i := range fl {
		f := &fl[i]
		err := c.await(ctx, f.msg, f.fut, f.err)
		if err != nil {
			c.metrics.publishFails.WithLabelValues(f.typ).Inc()
			f.span.RecordError(err)
			f.span.SetStatus(codes.Error, err.Error())
			errs = append(errs, fmt.Errorf("publish %s %s: %w", f.typ, f.msg.Header.Get(nats.MsgIdHdr), err))
		} else {
			c.metrics.published.WithLabelValues(f.typ).Inc()
		}
		f.span.End()
	}
	return errors.Join(errs...)
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
		c.log.Warn("publish retry", "subject", msg.Subject, "event_id", msg.Header.Get(nats.MsgIdHdr), "attempt", attempt+1, "error", err)
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
