package api

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/stateguard/stateguard/pkg/events"
)

// Metrics are sastingest's Prometheus metrics.
type Metrics struct {
	uploads  *prometheus.CounterVec
	bytes    *prometheus.CounterVec
	results  *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	inflight prometheus.Gauge
}

// NewMetrics registers the metrics with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		uploads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stateguard_sastingest_uploads_total", Help: "SARIF uploads by endpoint and outcome.",
		}, []string{"endpoint", "outcome"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stateguard_sastingest_received_bytes_total", Help: "Request body bytes received, as sent (compressed or not), by endpoint.",
		}, []string{"endpoint"}),
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stateguard_sastingest_results_total", Help: "Results of accepted uploads by security severity band.",
		}, []string{"severity"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "stateguard_sastingest_ingest_duration_seconds", Help: "Time from request to answer, by endpoint and outcome.",
			Buckets: []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300},
		}, []string{"endpoint", "outcome"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "stateguard_sastingest_uploads_in_flight", Help: "Uploads being read, parsed or stored.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.uploads, m.bytes, m.results, m.latency, m.inflight)
	}
	return m
}

func (m *Metrics) accepted(s events.SeverityCounts) {
	m.results.WithLabelValues("critical").Add(float64(s.Critical))
	m.results.WithLabelValues("high").Add(float64(s.High))
	m.results.WithLabelValues("medium").Add(float64(s.Medium))
	m.results.WithLabelValues("low").Add(float64(s.Low))
	m.results.WithLabelValues("none").Add(float64(s.None))
}
