package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Handler handles one event. It returns nil to acknowledge it, an error made
// with Permanent to dead-letter it, or any other error to have it delivered
// again later (RetryAfter sets the delay). Handlers must be idempotent: an
// event may arrive twice, late, or out of order.
type Handler func(ctx context.Context, ev Event) error

// ConsumerConfig configures a durable pull consumer.
type ConsumerConfig struct {
	// Stream to consume, for example StreamSARIF.
	Stream string
	// Name of the durable consumer; a restarted service resumes from it.
	Name string
	// Subjects filters the stream; empty means all of it.
	Subjects []string
	// AckWait is how long a delivery may stay unacknowledged (default 30s).
	AckWait time.Duration
	// MaxDeliver bounds deliveries; the last failure dead-letters the event
	// (default 10).
	MaxDeliver int
	// Backoff is the redelivery schedule after ack timeouts.
	Backoff []time.Duration
	// RetryDelay is the first delay after a retryable error; it doubles per
	// delivery up to MaxRetryDelay (defaults 500ms and 1m).
	RetryDelay    time.Duration
	MaxRetryDelay time.Duration
	// MaxAckPending bounds unacknowledged deliveries (default 1000).
	MaxAckPending int
	// BatchSize is how many messages one pull asks for (default 256).
	BatchSize int
	// Concurrency is how many events the subscription handles at once
	// (default 1: one at a time, in delivery order). Handlers that wait for
	// something shared, such as a group commit, need more.
	Concurrency int
}

func (cfg *ConsumerConfig) defaults() error {
	if cfg.Stream == "" || cfg.Name == "" {
		return errors.New("consumer: stream and name are required")
	}
	if strings.ContainsAny(cfg.Name, ". *>") {
		return fmt.Errorf("consumer: name %q may not contain '.', '*', '>' or spaces", cfg.Name)
	}
	if err := checkSubjects(append(cfg.Subjects, apiSubject(cfg.Stream, cfg.Name))...); err != nil {
		return fmt.Errorf("consumer: %w", err)
	}
	if cfg.AckWait <= 0 {
		cfg.AckWait = 30 * time.Second
	}
	if cfg.MaxDeliver == 0 {
		cfg.MaxDeliver = 10
	}
	if cfg.RetryDelay <= 0 {
		cfg.RetryDelay = 500 * time.Millisecond
	}
	if cfg.MaxRetryDelay <= 0 {
		cfg.MaxRetryDelay = time.Minute
	}
	if cfg.MaxAckPending <= 0 {
		cfg.MaxAckPending = 1000
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 256
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 1
	}
	return nil
}

// pullExpiry bounds each pull request. The client notices a pull the
// server no longer serves after two missed heartbeats (half the expiry
// each), so this bounds how long a consumer can sit idle with events
// pending: nats.go's default of 30 s let the correlator's benchmark stall
// for ~25 s with 700,000 events pending, no pull waiting on the server and
// nothing unacknowledged.
const pullExpiry = 5 * time.Second

// Subscription is a running consumer.
type Subscription struct {
	c    *Client
	cfg  ConsumerConfig
	jcfg jetstream.ConsumerConfig
	// mu guards the pull and the advisory subscription, which resume
	// replaces when the connection was re-created.
	mu      sync.Mutex
	cc      jetstream.ConsumeContext
	adv     *nats.Subscription
	stopped bool
	// work hands deliveries to the handler goroutines; quit stops them and
	// handlers tracks them, so Stop can wait for the events in hand.
	work     chan jetstream.Msg
	quit     chan struct{}
	handlers sync.WaitGroup
	once     sync.Once
	label    string
}

// Dead-letter headers added to the copy of a failed event.
const (
	HeaderDeadLetterReason     = "Stateguard-Dead-Letter-Reason"
	HeaderDeadLetterStream     = "Stateguard-Dead-Letter-Stream"
	HeaderDeadLetterConsumer   = "Stateguard-Dead-Letter-Consumer"
	HeaderDeadLetterSequence   = "Stateguard-Dead-Letter-Sequence"
	HeaderDeadLetterDeliveries = "Stateguard-Dead-Letter-Deliveries"
	HeaderDeadLetterSubject    = "Stateguard-Dead-Letter-Subject"
)

// DeadLetterSubject is where a consumer's dead letters go.
func DeadLetterSubject(stream, consumer string) string {
	return DeadLetterPrefix + stream + "." + consumer
}

// Consume creates (or updates) a durable consumer and runs h on every
// event until the subscription is stopped or the client closed. Events are
// handled cfg.Concurrency at a time (by default one at a time, in stream
// order per delivery).
func (c *Client) Consume(ctx context.Context, cfg ConsumerConfig, h Handler) (*Subscription, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	s := &Subscription{c: c, cfg: cfg, jcfg: cfg.jetstream(), label: cfg.Stream + "/" + cfg.Name,
		work: make(chan jetstream.Msg), quit: make(chan struct{})}
	for range cfg.Concurrency {
		s.handlers.Go(func() {
			for {
				select {
				case m := <-s.work:
					s.handle(m, h)
				case <-s.quit:
					return
				}
			}
		})
	}
	if err := s.resume(ctx); err != nil {
		close(s.quit)
		s.handlers.Wait()
		return nil, err
	}
	// The dead-letter counter exists at zero from the start, so an alert
	// on its increase() sees the first dead letter.
	c.metrics.deadLettered.WithLabelValues(cfg.Name)
	c.mu.Lock()
	c.consumers = append(c.consumers, s)
	c.mu.Unlock()
	return s, nil
}

// resume creates (or updates) the durable consumer on the client's current
// connection and starts pulling from it; the connection's re-creation
// calls it again for a running subscription, which picks up where the
// durable consumer stands.
func (s *Subscription) resume(ctx context.Context) error {
	c, cfg := s.c, s.cfg
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil
	}
	cons, err := c.js.CreateOrUpdateConsumer(ctx, cfg.Stream, s.jcfg)
	if err != nil {
		return fmt.Errorf("consumer %s on %s: %w", cfg.Name, cfg.Stream, err)
	}
	// Events whose deliveries ran out on ack timeouts (a handler that hung or
	// a process that died each time) reach the dead-letter stream through
	// the server's max-deliveries advisory.
	advSubject := fmt.Sprintf("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.%s.%s", cfg.Stream, cfg.Name)
	adv, err := c.Conn().Subscribe(advSubject, s.onMaxDeliveries)
	if err != nil {
		return fmt.Errorf("consumer %s: advisory subscription: %w", cfg.Name, err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case s.work <- m:
		case <-s.quit: // stopping: left unacknowledged for the next start
		}
	}, jetstream.PullMaxMessages(cfg.BatchSize), jetstream.PullExpiry(pullExpiry),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if errors.Is(err, jetstream.ErrNoHeartbeat) {
				// The server stopped serving the pull request the client
				// counts on; the client pulls again.
				c.metrics.missedHeartbeats.WithLabelValues(s.cfg.Name).Inc()
				c.log.Info("no heartbeat from the server for a pull; pulling again", "consumer", s.label)
				return
			}
			c.log.Debug("consume", "consumer", s.label, "error", err)
		}))
	if err != nil {
		_ = adv.Unsubscribe()
		return fmt.Errorf("consumer %s: consume: %w", cfg.Name, err)
	}
	if s.cc != nil {
		// The previous connection's pull, closed with it.
		s.cc.Stop()
	}
	s.cc, s.adv = cc, adv
	return nil
}

// EnsureConsumer creates (or updates) the durable consumer cfg describes
// without consuming from it: the bootstrap step creates the consumers a
// service binds to later (WithBind).
func (c *Client) EnsureConsumer(ctx context.Context, cfg ConsumerConfig) error {
	if err := cfg.defaults(); err != nil {
		return err
	}
	_, err := c.consumer(ctx, cfg)
	return err
}

// consumer creates, updates or (WithBind) binds to the durable consumer.
func (c *Client) consumer(ctx context.Context, cfg ConsumerConfig) (jetstream.Consumer, error) {
	cons, err := c.js.CreateOrUpdateConsumer(ctx, cfg.Stream, cfg.jetstream())
	if err != nil {
		return nil, fmt.Errorf("consumer %s on %s: %w", cfg.Name, cfg.Stream, err)
	}
	return cons, nil
}

// jetstream is the durable consumer's JetStream configuration.
func (cfg ConsumerConfig) jetstream() jetstream.ConsumerConfig {
	jcfg := jetstream.ConsumerConfig{
		Durable:       cfg.Name,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       cfg.AckWait,
		MaxDeliver:    cfg.MaxDeliver,
		BackOff:       cfg.Backoff,
		MaxAckPending: cfg.MaxAckPending,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	switch len(cfg.Subjects) {
	case 0:
	case 1:
		jcfg.FilterSubject = cfg.Subjects[0]
	default:
		jcfg.FilterSubjects = cfg.Subjects
	}
	return jcfg
}

// Stop stops pulling, lets the events in hand finish (bounded by ctx), and
// leaves everything not acknowledged for the next start.
func (s *Subscription) Stop(ctx context.Context) error {
	var err error
	s.once.Do(func() {
		s.mu.Lock()
		s.stopped = true
		cc, adv := s.cc, s.adv
		s.mu.Unlock()
		cc.Drain()
		_ = adv.Unsubscribe()
		select {
		case <-cc.Closed():
		case <-ctx.Done():
			cc.Stop()
			err = fmt.Errorf("consumer %s: stop: %w", s.label, ctx.Err())
		}
		close(s.quit)
		done := make(chan struct{})
		go func() { s.handlers.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			err = fmt.Errorf("consumer %s: stop: %w", s.label, ctx.Err())
		}
	})
	return err
}

func (s *Subscription) handle(m jetstream.Msg, h Handler) {
	c := s.c
	meta, err := m.Metadata()
	if err != nil {
		c.log.Error("message without metadata", "consumer", s.label, "subject", m.Subject(), "error", err)
		_ = m.Term()
		return
	}
	ev, err := decode(m.Headers(), m.Data())
	if err != nil {
		reason := fmt.Sprintf("malformed event: %v", err)
		c.log.Warn("dead-lettering malformed event", "consumer", s.label, "subject", m.Subject(), "stream_seq", meta.Sequence.Stream, "reason", reason)
		s.finishFailed(m, meta, "", reason)
		return
	}
	typ := ev.Type()
	ctx := ExtractTrace(context.Background(), ev)
	ctx, span := c.tracer.Start(ctx, "process "+m.Subject(), trace.WithSpanKind(trace.SpanKindConsumer))
	if span.IsRecording() {
		// Built only for a span that records them (none without a
		// tracer provider).
		span.SetAttributes(eventAttrs(ev, m.Subject())...)
		span.SetAttributes(attrOperation.String("process"), attrOperationNm.String("process"),
			attrConsumer.String(s.cfg.Name), attrDeliveryCount.Int64(int64(meta.NumDelivered)))
	}
	defer span.End()
	ctx, cancel := context.WithTimeout(ctx, s.cfg.AckWait)
	defer cancel()

	start := time.Now()
	herr := safeHandle(ctx, h, ev)
	c.metrics.handling.WithLabelValues(s.cfg.Name, typ).Observe(time.Since(start).Seconds())
	if herr == nil {
		if err := m.Ack(); err != nil {
			c.log.WarnContext(ctx, "ack failed; the event will be redelivered", "consumer", s.label, "event_id", ev.ID(), "error", err)
		}
		c.metrics.consumed.WithLabelValues(s.cfg.Name, typ).Inc()
		return
	}
	span.RecordError(herr)
	span.SetStatus(codes.Error, herr.Error())
	if IsPermanent(herr) {
		c.metrics.failed.WithLabelValues(s.cfg.Name, typ, "permanent").Inc()
		c.log.WarnContext(ctx, "dead-lettering event", "consumer", s.label, "event_id", ev.ID(), "type", typ, "reason", herr.Error())
		s.finishFailed(m, meta, typ, herr.Error())
		return
	}
	c.metrics.failed.WithLabelValues(s.cfg.Name, typ, "retry").Inc()
	if s.cfg.MaxDeliver > 0 && meta.NumDelivered >= uint64(s.cfg.MaxDeliver) {
		reason := fmt.Sprintf("max deliveries (%d) exhausted: %v", meta.NumDelivered, herr)
		c.log.WarnContext(ctx, "dead-lettering event", "consumer", s.label, "event_id", ev.ID(), "type", typ, "reason", reason)
		s.finishFailed(m, meta, typ, reason)
		return
	}
	delay := s.retryDelay(meta.NumDelivered)
	var re *RetryError
	if errors.As(herr, &re) && re.Delay > 0 {
		delay = re.Delay
	}
	c.log.InfoContext(ctx, "event will be retried", "consumer", s.label, "event_id", ev.ID(), "type", typ, "delivery", meta.NumDelivered, "delay", delay.String(), "error", herr.Error())
	_ = m.NakWithDelay(delay)
}

func (s *Subscription) retryDelay(delivered uint64) time.Duration {
	d := s.cfg.RetryDelay << min(delivered-1, 20)
	return min(d, s.cfg.MaxRetryDelay)
}

// safeHandle turns a handler panic into a retryable error: a bug must not
// take the service down, and MaxDeliver dead-letters the event in the end.
func safeHandle(ctx context.Context, h Handler, ev Event) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panic: %v", r)
		}
	}()
	return h(ctx, ev)
}

// finishFailed dead-letters m and terminates it; if the dead letter cannot
// be stored, the event is redelivered instead of lost.
func (s *Subscription) finishFailed(m jetstream.Msg, meta *jetstream.MsgMetadata, typ, reason string) {
	err := s.deadLetter(m.Subject(), m.Headers(), m.Data(), meta.Sequence.Stream, meta.NumDelivered, reason)
	if err != nil {
		s.c.log.Error("dead letter not stored; the event will be redelivered", "consumer", s.label, "stream_seq", meta.Sequence.Stream, "error", err)
		_ = m.NakWithDelay(s.cfg.RetryDelay)
		return
	}
	s.c.metrics.deadLettered.WithLabelValues(s.cfg.Name).Inc()
	_ = m.Term()
}

func (s *Subscription) deadLetter(subject string, hdr nats.Header, data []byte, seq, delivered uint64, reason string) error {
	dl := nats.NewMsg(DeadLetterSubject(s.cfg.Stream, s.cfg.Name))
	for k, v := range hdr {
		dl.Header[k] = append([]string(nil), v...)
	}
	dl.Header.Set(HeaderDeadLetterReason, oneLine(reason))
	dl.Header.Set(HeaderDeadLetterStream, s.cfg.Stream)
	dl.Header.Set(HeaderDeadLetterConsumer, s.cfg.Name)
	dl.Header.Set(HeaderDeadLetterSequence, strconv.FormatUint(seq, 10))
	dl.Header.Set(HeaderDeadLetterDeliveries, strconv.FormatUint(delivered, 10))
	dl.Header.Set(HeaderDeadLetterSubject, subject)
	dl.Header.Set(nats.MsgIdHdr, fmt.Sprintf("dlq.%s.%s.%d", s.cfg.Stream, s.cfg.Name, seq))
	dl.Data = data
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := s.c.js.PublishMsg(ctx, dl)
	return err
}

// onMaxDeliveries dead-letters an event whose deliveries ran out unacked.
func (s *Subscription) onMaxDeliveries(m *nats.Msg) {
	var adv struct {
		StreamSeq  uint64 `json:"stream_seq"`
		Deliveries uint64 `json:"deliveries"`
	}
	if err := json.Unmarshal(m.Data, &adv); err != nil || adv.StreamSeq == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := s.c.js.Stream(ctx, s.cfg.Stream)
	if err != nil {
		s.c.log.Error("max deliveries: stream lookup", "consumer", s.label, "error", err)
		return
	}
	raw, err := st.GetMsg(ctx, adv.StreamSeq)
	if err != nil {
		s.c.log.Error("max deliveries: message lookup", "consumer", s.label, "stream_seq", adv.StreamSeq, "error", err)
		return
	}
	reason := fmt.Sprintf("max deliveries (%d) exhausted without acknowledgement", adv.Deliveries)
	if err := s.deadLetter(raw.Subject, raw.Header, raw.Data, adv.StreamSeq, adv.Deliveries, reason); err != nil {
		s.c.log.Error("max deliveries: dead letter not stored", "consumer", s.label, "stream_seq", adv.StreamSeq, "error", err)
		return
	}
	s.c.metrics.deadLettered.WithLabelValues(s.cfg.Name).Inc()
	s.c.log.Warn("dead-lettered event after max deliveries", "consumer", s.label, "stream_seq", adv.StreamSeq)
}

func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
	if len(s) > 1024 {
		s = s[:1024]
	}
	return s
}
