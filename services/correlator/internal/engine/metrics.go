package engine

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	events    *prometheus.CounterVec
	decisions *prometheus.CounterVec
	latency   prometheus.Histogram
	conflicts prometheus.Counter
	stateSize prometheus.Histogram
	batches   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stateguard_correlator_events_total",
			Help: "Events handled, by type and outcome (applied, duplicate, ignored, invalid).",
		}, []string{"type", "outcome"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stateguard_correlator_decisions_total",
			Help: "Decision events published, by type.",
		}, []string{"type"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "stateguard_correlator_decision_latency_seconds",
			Help:    "From the time of the event that caused decisions to their publication.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "stateguard_correlator_kv_conflicts_total",
			Help: "State writes that lost a compare-and-set race and were retried.",
		}),
		stateSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "stateguard_correlator_state_bytes",
			Help:    "Bytes stored per namespace write to KV (its key and the parts written with it).",
			Buckets: prometheus.ExponentialBuckets(256, 2, 14),
		}),
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stateguard_correlator_state_batches_total",
			Help: "Atomic batches of state writes, by result (atomic: stored as one; fallback: refused and written one by one).",
		}, []string{"result"}),
	}
	if reg != nil {
		reg.MustRegister(m.events, m.decisions, m.latency, m.conflicts, m.stateSize, m.batches)
	}
	return m
}
