package events

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the transport's Prometheus collectors.
type metrics struct {
	published    *prometheus.CounterVec
	publishFails *prometheus.CounterVec
	consumed     *prometheus.CounterVec
	failed       *prometheus.CounterVec
	deadLettered *prometheus.CounterVec
	handling     *prometheus.HistogramVec
	// missedHeartbeats counts pulls the server stopped serving unnoticed.
	missedHeartbeats *prometheus.CounterVec
	// batches counts atomic batches by stream and result (atomic: stored
	// as one; fallback: refused and sent event by event).
	batches   *prometheus.CounterVec
	batchSize prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stateguard_events_published_total",
			Help: "Events stored by JetStream, by type.",
		}, []string{"type"}),
		publishFails: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stateguard_events_publish_failures_total",
			Help: "Events that could not be stored after all retries, by type.",
		}, []string{"type"}),
		consumed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stateguard_events_consumed_total",
			Help: "Events handled and acknowledged, by consumer and type.",
		}, []string{"consumer", "type"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stateguard_events_failed_total",
			Help: "Handler failures, by consumer, type and kind (retry or permanent).",
		}, []string{"consumer", "type", "kind"}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stateguard_events_dead_lettered_total",
			Help: "Events sent to the dead-letter stream, by consumer.",
		}, []string{"consumer"}),
		missedHeartbeats: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stateguard_consumer_missed_heartbeats_total",
			Help: "Pull requests the client gave up on after missed heartbeats and pulled again, by consumer.",
		}, []string{"consumer"}),
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stateguard_events_batches_total",
			Help: "Atomic batches of events, by stream and result (atomic: stored as one; fallback: refused and sent event by event).",
		}, []string{"stream", "result"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "stateguard_events_batch_size",
			Help:    "Events per atomic batch stored.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 11),
		}),
		handling: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "stateguard_events_handling_seconds",
			Help:    "Time a handler took, by consumer and type.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"consumer", "type"}),
	}
	if reg != nil {
		m.published = register(reg, m.published)
		m.publishFails = register(reg, m.publishFails)
		m.consumed = register(reg, m.consumed)
		m.failed = register(reg, m.failed)
		m.deadLettered = register(reg, m.deadLettered)
		m.handling = register(reg, m.handling)
		m.missedHeartbeats = register(reg, m.missedHeartbeats)
		m.batches = register(reg, m.batches)
		m.batchSize = register(reg, m.batchSize)
	}
	return m
}

// register registers c, or returns the collector already registered under
// its name, so several clients in one process share their series.
func register[T prometheus.Collector](reg prometheus.Registerer, c T) T {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(T); ok {
				return existing
			}
		}
	}
	return c
}
