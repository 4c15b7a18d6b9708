package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
)

// Client publishes and consumes stateguard events on NATS JetStream. It is
// safe for concurrent use. Every service talks to NATS through a Client.
type Client struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	source  string
	log     *slog.Logger
	tracer  trace.Tracer
	metrics *metrics
	ownConn bool

	publishRetries int
	publishBackoff time.Duration
	stallWait      time.Duration

	mu        sync.Mutex
	consumers []*Subscription
	closed    bool
}

type options struct {
	source         string
	log            *slog.Logger
	tp             trace.TracerProvider
	reg            prometheus.Registerer
	maxPending     int
	publishRetries int
	publishBackoff time.Duration
	ackTimeout     time.Duration
	bind           bool
}

// Option configures a Client.
type Option func(*options) error

// WithSource sets the CloudEvents source of events this client creates
// (for example /stateguard/sastingest).
func WithSource(s string) Option {
	return func(o *options) error {
		if s == "" {
			return errors.New("events: empty source")
		}
		o.source = s
		return nil
	}
}

// WithLogger sets the logger; by default logs are discarded.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("events: nil logger")
		}
		o.log = l
		return nil
	}
}

// WithTracerProvider sets the tracer provider; by default the global one.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(o *options) error { o.tp = tp; return nil }
}

// WithRegisterer registers the transport's metrics.
func WithRegisterer(r prometheus.Registerer) Option {
	return func(o *options) error { o.reg = r; return nil }
}

// WithMaxPending bounds the publishes awaiting an ack (default 4096).
func WithMaxPending(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return fmt.Errorf("events: max pending %d < 1", n)
		}
		o.maxPending = n
		return nil
	}
}

// WithPublishRetry sets how often and how long apart a publish is retried
// after a timeout or "no responders" (default 8 tries from 100ms, doubling).
func WithPublishRetry(attempts int, backoff time.Duration) Option {
	return func(o *options) error {
		if attempts < 0 || backoff <= 0 {
			return fmt.Errorf("events: bad publish retry %d/%s", attempts, backoff)
		}
		o.publishRetries, o.publishBackoff = attempts, backoff
		return nil
	}
}

// WithAckTimeout bounds the wait for one publish ack (default 5s).
func WithAckTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("events: ack timeout %s", d)
		}
		o.ackTimeout = d
		return nil
	}
}

// New wraps an established connection. Close does not close nc.
func New(nc *nats.Conn, opts ...Option) (*Client, error) {
	o := options{
		source:         "/stateguard",
		log:            slog.New(slog.DiscardHandler),
		maxPending:     4096,
		publishRetries: 8,
		publishBackoff: 100 * time.Millisecond,
		ackTimeout:     5 * time.Second,
	}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(o.maxPending),
		jetstream.WithPublishAsyncTimeout(o.ackTimeout),
	)
	if err != nil {
		return nil, fmt.Errorf("events: jetstream: %w", err)
	}
	if o.bind {
		js = bindingJetStream{js}
	}
	return &Client{
		nc:             nc,
		js:             js,
		source:         o.source,
		log:            o.log,
		tracer:         tracer(o.tp),
		metrics:        newMetrics(o.reg),
		publishRetries: o.publishRetries,
		publishBackoff: o.publishBackoff,
		// While max pending publishes await acks, a publish waits this
		// long for room before it counts as failed (and is retried).
		stallWait: o.ackTimeout,
	}, nil
}

// Connect dials NATS with cfg and returns a Client that owns the connection.
func Connect(ctx context.Context, cfg ConnConfig, opts ...Option) (*Client, error) {
	nc, err := cfg.dial(ctx)
	if err != nil {
		return nil, err
	}
	c, err := New(nc, opts...)
	if err != nil {
		nc.Close()
		return nil, err
	}
	c.ownConn = true
	// What happens to the connection is what explains a stalled consumer
	// or a burst of redeliveries: say it.
	nc.SetDisconnectErrHandler(func(_ *nats.Conn, err error) {
		if err != nil {
			c.log.Warn("nats disconnected", "error", err)
		}
	})
	nc.SetReconnectHandler(func(nc *nats.Conn) {
		c.log.Info("nats reconnected", "server", nc.ConnectedServerName())
	})
	nc.SetErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
		subject := ""
		if sub != nil {
			subject = sub.Subject
		}
		c.log.Warn("nats asynchronous error", "subject", subject, "error", err)
	})
	return c, nil
}

// Source is the CloudEvents source of this client's events.
func (c *Client) Source() string { return c.source }

// JetStream gives access to KV and Object Store buckets and stream admin.
func (c *Client) JetStream() jetstream.JetStream { return c.js }

// Conn is the underlying connection.
func (c *Client) Conn() *nats.Conn { return c.nc }

// NewEvent builds an event of a catalogued type with this client's source.
func (c *Client) NewEvent(typ, id string, payload any) (Event, error) {
	return NewEvent(typ, c.source, id, payload)
}

// Ready reports an error unless the connection is up and every stream of
// the catalogue exists.
func (c *Client) Ready(ctx context.Context) error {
	if st := c.nc.Status(); st != nats.CONNECTED {
		return fmt.Errorf("nats connection %s", st)
	}
	for name := range StreamSubjects {
		if _, err := c.js.Stream(ctx, name); err != nil {
			return fmt.Errorf("stream %s: %w", name, err)
		}
	}
	return nil
}

// Close stops every consumer, waits for in-flight publishes, and drains the
// connection if the client owns it. It waits at most until ctx ends.
func (c *Client) Close(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	subs := c.consumers
	c.mu.Unlock()
	var errs []error
	for _, s := range subs {
		errs = append(errs, s.Stop(ctx))
	}
	select {
	case <-c.js.PublishAsyncComplete():
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("events: close: publishes pending: %w", ctx.Err()))
	}
	if c.ownConn {
		closed := make(chan struct{})
		c.nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
		if err := c.nc.Drain(); err != nil {
			c.nc.Close()
		} else {
			select {
			case <-closed:
			case <-ctx.Done():
				c.nc.Close()
			}
		}
	}
	return errors.Join(errs...)
}
