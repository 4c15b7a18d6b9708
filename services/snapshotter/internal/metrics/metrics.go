package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

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
	// Restores counts Restores that ended, by outcome (Completed,
	// RolledBack, Failed) and reason.
	Restores *prometheus.CounterVec
	// SafetySnapshotDeletions counts Restores' safety snapshots deleted
	// once their pin expired.
	SafetySnapshotDeletions *prometheus.CounterVec
	// Recommendations counts restore.recommended events by result
	// (current: kept as the incident's current recommendation for the
	// claim; superseded: a newer revision was kept already).
	Recommendations *prometheus.CounterVec
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

	// The Velero-shaped series (velero_backup_*{schedule} renamed
	// stateguard_snapshotter_backup_*): one "backup" is one VolumeSnapshot
	// of a policy; the schedule label is "<namespace>/<policy>". Updated
	// only through SnapshotCompleted and SnapshotFailed, beside Snapshots.
	backupSuccess     *prometheus.CounterVec
	backupFailure     *prometheus.CounterVec
	backupLastSuccess *prometheus.GaugeVec
	backupDuration    *prometheus.HistogramVec
}

// veleroLabels are the labels of the Velero-shaped series: Velero's
// schedule, plus the policy's namespace and name.
var veleroLabels = []string{"schedule", "namespace", "policy"}

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
		Restores: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stateguard_snapshotter_restores_total",
			Help: "Restores that ended, by outcome (Completed, RolledBack, Failed) and reason (Completed, or the failure's).",
		}, []string{"namespace", "outcome", "reason"}),
		SafetySnapshotDeletions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stateguard_snapshotter_safety_snapshot_deletions_total",
			Help: "Restores' safety snapshots deleted after their pin expired (and nothing else pinned or used them).",
		}, []string{"namespace"}),
		Recommendations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stateguard_snapshotter_restore_recommendations_total",
			Help: "restore.recommended events handled, by result (current: kept as the incident's current recommendation for the claim; superseded: a newer revision was already kept).",
		}, []string{"result"}),
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
		backupSuccess: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stateguard_snapshotter_backup_success_total",
			Help: "Snapshots that became ready, by schedule (\"<namespace>/<policy>\"); as velero_backup_success_total.",
		}, veleroLabels),
		backupFailure: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stateguard_snapshotter_backup_failure_total",
			Help: "Snapshots that failed (CSI error or a failed pre hook), by schedule; as velero_backup_failure_total.",
		}, veleroLabels),
		backupLastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "stateguard_snapshotter_backup_last_successful_timestamp",
			Help: "Unix time at which the snapshotter last saw a snapshot of the schedule ready; as velero_backup_last_successful_timestamp.",
		}, veleroLabels),
		backupDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "stateguard_snapshotter_backup_duration_seconds",
			Help:    "From a VolumeSnapshot's creation to the pass that saw it ready, by schedule; as velero_backup_duration_seconds.",
			Buckets: []float64{1, 5, 15, 30, 60, 300, 600, 900, 1800, 3600, 7200, 10800, 14400},
		}, veleroLabels),
	}
	if reg != nil {
		reg.MustRegister(m.Snapshots, m.Missed, m.NewestReadyAge, m.RetentionDeletions, m.HookDuration, m.RestoreTests, m.Pins, m.Restores, m.SafetySnapshotDeletions, m.Recommendations, m.PolicyErrors,
			m.Observations, m.ObservationErrors, m.backupSuccess, m.backupFailure, m.backupLastSuccess, m.backupDuration)
	}
	return m
}

// Schedule is the value of the Velero-shaped series' schedule label for a
// policy: Velero names a Schedule, a SnapshotPolicy is namespaced.
func Schedule(namespace, policy string) string { return namespace + "/" + policy }

// SnapshotCompleted counts a snapshot of the policy that became ready:
// created is the VolumeSnapshot's creation, seen the pass that saw it
// ready.
func (m *Metrics) SnapshotCompleted(namespace, policy string, created, seen time.Time) {
	lv := []string{Schedule(namespace, policy), namespace, policy}
	m.Snapshots.WithLabelValues(namespace, policy, "completed").Inc()
	m.backupSuccess.WithLabelValues(lv...).Inc()
	m.backupLastSuccess.WithLabelValues(lv...).Set(float64(seen.Unix()))
	if !created.IsZero() && !seen.Before(created) {
		m.backupDuration.WithLabelValues(lv...).Observe(seen.Sub(created).Seconds())
	}
}

// SnapshotFailed counts a snapshot of the policy that failed.
func (m *Metrics) SnapshotFailed(namespace, policy string) {
	m.Snapshots.WithLabelValues(namespace, policy, "failed").Inc()
	m.backupFailure.WithLabelValues(Schedule(namespace, policy), namespace, policy).Inc()
}

// InitSchedule makes the policy's counters exist at zero (as Velero's
// InitSchedule does), so increase() and absent() see a policy that has
// not snapshotted yet.
func (m *Metrics) InitSchedule(namespace, policy string) {
	lv := []string{Schedule(namespace, policy), namespace, policy}
	m.backupSuccess.WithLabelValues(lv...)
	m.backupFailure.WithLabelValues(lv...)
	m.Snapshots.WithLabelValues(namespace, policy, "completed")
	m.Snapshots.WithLabelValues(namespace, policy, "failed")
	m.Missed.WithLabelValues(namespace, policy)
}
