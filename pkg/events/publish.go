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

// Publish stores events in JetStream. The events of different streams are
// sent asynchronously, side by side, bounded by the client's max pending;
// those of one stream in the order given, each once the one before it is
// stored, so a stream never holds one before an event given ahead of it —
// after a failure the rest of that stream's events are not sent
// (ErrEarlierEventFailed). Publish returns nil only once the server
// acknowledged every one of them, that is once each is stored (and, with
// sync_interval: always, on disk). Timeouts and "no responders" are
// retried with backoff; a retry carries the same Nats-Msg-Id, so it cannot
// store an event twice. Each event gets a producer span and the span's
// context in its traceparent extension.
//
// A caller's events of one stream therefore cost one stored round trip
// each, one after the other (with sync_interval: always each is a disk
// sync on the server, which no way of sending them avoids; see MinBatch):
// events that need no order between them — of different applications,
// say — are stored side by side when each goes in a Publish of its own,
// concurrently. PublishBatch and Batcher write many with one sync.
func (c *Client) Publish(ctx context.Context, evs ...Event) error {
	out, err := c.prepare(ctx, evs)
	if err != nil {
		return err
	}
	return c.finish(out, c.sendEach(ctx, out, streamChains(out)))
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

// sendEach publishes the messages of out on their own, asynchronously, and
// waits for the acks; the result has one entry per message. chains are runs
// of indexes into out that must be stored in their order (one caller's
// events of one stream, in the order it gave them): a message of a chain
// is sent only once the one before it is stored, and when one fails the
// rest of its chain is not sent (ErrEarlierEventFailed). Pipelining a
// chain would let a retried event land after one sent later: while a
// stream elects a leader, the first of two events can be refused and the
// second stored. The chains are sent side by side, their first messages
// all at once, then their second ones, and so on.
func (c *Client) sendEach(ctx context.Context, out []outgoing, chains [][]int) []error {
	errs := make([]error, len(out))
	type step struct {
		chain, at int
		fut       jetstream.PubAckFuture
		err       error
	}
	var live []step
	for ci, ch := range chains {
		if len(ch) > 0 {
			live = append(live, step{chain: ci})
		}
	}
	for len(live) > 0 {
		for k := range live {
			s := &live[k]
			s.fut, s.err = c.js.PublishMsgAsync(out[chains[s.chain][s.at]].msg, jetstream.WithStallWait(c.stallWait))
		}
		next := make([]step, 0, len(live))
		for _, s := range live {
			ch := chains[s.chain]
			i := ch[s.at]
			if err := c.await(ctx, out[i].msg, s.fut, s.err); err != nil {
				errs[i] = err
				for _, j := range ch[s.at+1:] {
					errs[j] = fmt.Errorf("not sent after %s: %w", out[i].msg.Header.Get(nats.MsgIdHdr), ErrEarlierEventFailed)
				}
				continue
			}
			if s.at+1 < len(ch) {
				next = append(next, step{chain: s.chain, at: s.at + 1})
			}
		}
		live = next
	}
	return errs
}

// ErrEarlierEventFailed is the error of an event not sent because an event
// its caller gave before it, on the same stream, was not stored (sendEach).
var ErrEarlierEventFailed = errors.New("an earlier event of the same stream was not stored")

// streamChains are the indexes of out per stream, in order (sendEach).
func streamChains(out []outgoing) [][]int {
	m := byStream(out)
	chains := make([][]int, 0, len(m))
	for _, idx := range m {
		chains = append(chains, idx)
	}
	return chains
}

// groupChains are the runs of msgs that groups (their sizes, in order)
// cover, as chains for sendEach.
func groupChains(groups []int) [][]int {
	chains := make([][]int, 0, len(groups))
	off := 0
	for _, g := range groups {
		ch := make([]int, g)
		for i := range ch {
			ch[i] = off + i
		}
		chains = append(chains, ch)
		off += g
	}
	return chains
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
