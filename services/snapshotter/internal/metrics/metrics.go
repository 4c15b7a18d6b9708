package metrics

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the snapshotter's metrics.
type Metrics struct {
	// Snapshots counts snapshots by policy and outcome (completed, failed).
	Snapshots *prometheus.CounterVec
	// Missed counts schedule slots missed while no snapshotter ran.
	Missed *prometheus.CounterVec
	// NewestReadyAge is the age of the newest ready snapshot of each PVC.
	NewestReadyAge *prometheus.GaugeVec
	// RetentionDeletions counts snapshots deleted by retention, by reason.
	RetentionDeletions *prometheus.CounterVec
	// HookDuration observes hook run times.
	HookDuration *prometheus.HistogramVec
	// RestoreTests counts restore tests by policy and result.
	RestoreTests *prometheus.CounterVec
	// Pins counts pin and unpin requests by action and result.
	Pins *prometheus.CounterVec
	// PolicyErrors counts, per pass, the policies that could not run or
	// whose run failed, by reason (a Ready reason such as
	// InvalidRetention, or SnapshotFailed, RetentionFailed,
	// RestoreTestFailed).
	PolicyErrors *prometheus.CounterVec
	// Observations counts published workload.observed events by kind
	// (change, resync).
	Observations *prometheus.CounterVec
	// ObservationErrors counts PVC observations that failed (retried).
	ObservationErrors prometheus.Counter
}

// New creates the metrics and registers them with reg (when not nil).
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Snapshots: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stateguard_snapshotter_snapshots_total",
			Help: "Snapshots by policy and outcome (completed, failed).",
		}, []string{"namespace", "policy", "outcome"}),
		Missed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stateguard_snapshotter_missed_slots_total",
			Help: "Schedule slots that passed while no snapshotter ran.",
		}, []string{"namespace", "policy"}),
		NewestReadyAge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "stateguard_snapshotter_newest_ready_snapshot_age_seconds",
			Help: "Age of the newest ready snapshot of each PVC a policy covers.",
		}, []string{"namespace", "pvc"}),
		RetentionDeletions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stateguard_snapshotter_retention_deletions_total",
			Help: "Snapshots deleted by retention, by policy and reason.",
		}, []string{"namespace", "policy", "reason"}),
		HookDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "stateguard_snapshotter_hook_duration_seconds",
			Help:    "Duration of consistency hooks by phase (pre, post) and outcome (ok, error).",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 12),
		}, []string{"namespace", "policy", "phase", "outcome"}),
		RestoreTests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stateguard_snapshotter_restore_tests_total",
			Help: "Restore tests by policy and result (passed, failed).",
		}, []string{"namespace", "policy", "result"}),
		Pins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stateguard_snapshotter_pin_requests_total",
			Help: "Pin and unpin requests by action (pin, unpin) and result (applied, stale).",
		}, []string{"action", "result"}),
		PolicyErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stateguard_snapshotter_policy_errors_total",
			Help: "Passes in which a policy could not run (invalid spec, by its Ready reason) or its run failed (SnapshotFailed, RetentionFailed, RestoreTestFailed).",
		}, []string{"namespace", "policy", "reason"}),
		Observations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stateguard_snapshotter_workload_observations_total",
			Help: "workload.observed events published, by kind (change: the pods on a protected PVC changed; resync: an unchanged set repeated).",
		}, []string{"kind"}),
		ObservationErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "stateguard_snapshotter_workload_observation_errors_total",
			Help: "PVC observations that failed (API, KV or publish error) and are retried.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.Snapshots, m.Missed, m.NewestReadyAge, m.RetentionDeletions, m.HookDuration, m.RestoreTests, m.Pins, m.PolicyErrors,
			m.Observations, m.ObservationErrors)
	}
	return m
}
