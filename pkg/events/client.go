package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
)

// Client publishes and consumes stateguard events on NATS JetStream. It is
// safe for concurrent use. Every service talks to NATS through a Client.
type Client struct {
	// link is the current connection; js sends every call to it.
	link    atomic.Pointer[link]
	js      jetstream.JetStream
	source  string
	log     *slog.Logger
	tracer  trace.Tracer
	metrics *metrics
	ownConn bool

	publishRetries int
	publishBackoff time.Duration
	stallWait      time.Duration

	// The connection's health: downSince is when it went down (unix
	// nanoseconds, 0 while it is up); Live fails once that is longer ago
	// than downGrace by now.
	downSince atomic.Int64
	downGrace time.Duration
	now       func() time.Time
	jsOpts    []jetstream.JetStreamOpt
	// redial re-creates a connection NATS closed for good (nil for a
	// client made with New); kick wakes it, stop and keeperDone end it.
	redial     func(context.Context) (*nats.Conn, error)
	kick       chan struct{}
	stop       context.CancelFunc
	keeperDone chan struct{}

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
	downGrace      time.Duration
	now            func() time.Time
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

// WithDownGrace sets how long the connection may be down before Live
// fails (default 60s), so that a liveness probe restarts a process whose
// connection does not come back.
func WithDownGrace(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return fmt.Errorf("events: down grace %s < 0", d)
		}
		o.downGrace = d
		return nil
	}
}

// WithClock sets the clock Live measures the down time with (tests).
func WithClock(now func() time.Time) Option {
	return func(o *options) error {
		if now == nil {
			return errors.New("events: nil clock")
		}
		o.now = now
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
		downGrace:      60 * time.Second,
		now:            time.Now,
	}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	jsOpts := []jetstream.JetStreamOpt{
		jetstream.WithPublishAsyncMaxPending(o.maxPending),
		jetstream.WithPublishAsyncTimeout(o.ackTimeout),
	}
	js, err := jetstream.New(nc, jsOpts...)
	if err != nil {
		return nil, fmt.Errorf("events: jetstream: %w", err)
	}
	c := &Client{
		jsOpts:         jsOpts,
		downGrace:      o.downGrace,
		now:            o.now,
		source:         o.source,
		log:            o.log,
		tracer:         tracer(o.tp),
		metrics:        newMetrics(o.reg),
		publishRetries: o.publishRetries,
		publishBackoff: o.publishBackoff,
		// While max pending publishes await acks, a publish waits this
		// long for room before it counts as failed (and is retried).
		stallWait: o.ackTimeout,
	}
	c.link.Store(&link{nc: nc, js: js})
	c.js = &jsProxy{c: c}
	if o.bind {
		c.js = bindingJetStream{c.js}
	}
	return c, nil
}

// Connect dials NATS with cfg and returns a Client that owns the connection.
// The client keeps it: nats.go reconnects a dropped connection by itself,
// and a connection NATS closes for good (an -ERR such as "maximum control
// line exceeded", an authorization error after a reconnect) is re-created
// with the same settings, its consumers resumed (see keep).
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
	c.redial = cfg.dial
	c.kick = make(chan struct{}, 1)
	c.keeperDone = make(chan struct{})
	kctx, stop := context.WithCancel(context.Background())
	c.stop = stop
	c.watch(nc)
	go c.keep(kctx)
	return c, nil
}

// watch installs the handlers that log what happens to nc, track whether
// it is up, and hand a connection NATS closed for good to keep.
func (c *Client) watch(nc *nats.Conn) {
	// What happens to the connection is what explains a stalled consumer
	// or a burst of redeliveries: say it.
	nc.SetDisconnectErrHandler(func(_ *nats.Conn, err error) {
		c.markDown()
		if err != nil {
			c.log.Warn("nats disconnected", "error", err)
		}
	})
	nc.SetReconnectHandler(func(nc *nats.Conn) {
		c.downSince.Store(0)
		c.log.Info("nats reconnected", "server", nc.ConnectedServerName())
	})
	nc.SetErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
		subject := ""
		if sub != nil {
			subject = sub.Subject
		}
		c.log.Warn("nats asynchronous error", "subject", subject, "error", err)
	})
	nc.SetClosedHandler(func(nc *nats.Conn) {
		c.mu.Lock()
		closing := c.closed
		c.mu.Unlock()
		if closing {
			return
		}
		c.markDown()
		c.log.Error("nats closed the connection for good; re-creating it", "error", nc.LastError())
		select {
		case c.kick <- struct{}{}:
		default:
		}
	})
}

// markDown records when the connection went down, once per outage.
func (c *Client) markDown() {
	if c.downSince.Load() == 0 {
		c.downSince.CompareAndSwap(0, c.now().UnixNano())
	}
}

// keep re-creates the connection each time NATS closed it for good, until
// the client is closed: it dials with the same settings (retrying with
// backoff), swaps the new connection in, and resumes every consumer on it.
func (c *Client) keep(ctx context.Context) {
	defer close(c.keeperDone)
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.kick:
		}
		if c.link.Load().nc.Status() != nats.CLOSED {
			continue
		}
		if err := c.recreate(ctx); err != nil {
			return // the client is closing
		}
	}
}

// recreate dials until it has a connection or ctx ends, then resumes the
// consumers (each retried until it runs again).
func (c *Client) recreate(ctx context.Context) error {
	for attempt := 1; ; attempt++ {
		dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		nc, err := c.redial(dctx)
		cancel()
		if err == nil {
			var js jetstream.JetStream
			if js, err = jetstream.New(nc, c.jsOpts...); err == nil {
				old := c.link.Load()
				c.watch(nc)
				c.link.Store(&link{nc: nc, js: js, gen: old.gen + 1})
				c.downSince.Store(0)
				c.log.Info("nats connection re-created", "attempt", attempt, "server", nc.ConnectedServerName())
				break
			}
			nc.Close()
		}
		c.log.Warn("re-creating the nats connection failed", "attempt", attempt, "error", err)
		if sleep(ctx, min(time.Duration(attempt)*time.Second, 10*time.Second)) != nil {
			return ctx.Err()
		}
	}
	c.mu.Lock()
	subs := append([]*Subscription(nil), c.consumers...)
	c.mu.Unlock()
	for _, s := range subs {
		for attempt := 1; ; attempt++ {
			err := s.resume(ctx)
			if err == nil {
				break
			}
			c.log.Warn("resuming consumer failed", "consumer", s.label, "attempt", attempt, "error", err)
			if sleep(ctx, min(time.Duration(attempt)*time.Second, 10*time.Second)) != nil {
				return ctx.Err()
			}
		}
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Source is the CloudEvents source of this client's events.
func (c *Client) Source() string { return c.source }

// JetStream gives access to KV and Object Store buckets and stream admin.
func (c *Client) JetStream() jetstream.JetStream { return c.js }

// Conn is the current underlying connection (a new one after NATS closed
// the previous one for good).
func (c *Client) Conn() *nats.Conn { return c.link.Load().nc }

// NewEvent builds an event of a catalogued type with this client's source.
func (c *Client) NewEvent(typ, id string, payload any) (Event, error) {
	return NewEvent(typ, c.source, id, payload)
}

// Ready reports an error unless the connection is up and every stream of
// the catalogue exists.
func (c *Client) Ready(ctx context.Context) error {
	if st := c.Conn().Status(); st != nats.CONNECTED {
		return fmt.Errorf("nats connection %s", st)
	}
	for name := range StreamSubjects {
		if _, err := c.js.Stream(ctx, name); err != nil {
			return fmt.Errorf("stream %s: %w", name, err)
		}
	}
	return nil
}

// Live reports an error once the connection has been down (disconnected,
// or closed and not re-created yet) for longer than the down grace: a
// liveness probe on it restarts a process that lost NATS for good.
func (c *Client) Live(context.Context) error {
	// The disconnect handler runs on nats.go's callback goroutine, maybe
	// after a probe already sees the connection down: the outage starts at
	// whichever notices it first.
	if c.Conn().Status() != nats.CONNECTED {
		c.markDown()
	}
	since := c.downSince.Load()
	if since == 0 {
		return nil
	}
	down := c.now().Sub(time.Unix(0, since))
	if down > c.downGrace {
		return fmt.Errorf("nats connection down for %s (grace %s)", down.Round(time.Second), c.downGrace)
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
	if c.stop != nil {
		// No connection is re-created from here on.
		c.stop()
		<-c.keeperDone
	}
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
		nc := c.Conn()
		closed := make(chan struct{})
		nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
		if err := nc.Drain(); err != nil {
			nc.Close()
		} else {
			select {
			case <-closed:
			case <-ctx.Done():
				nc.Close()
			}
		}
	}
	return errors.Join(errs...)
}
