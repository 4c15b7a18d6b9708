package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The Velero-shaped series move with ours: a Velero dashboard that reads
// velero_backup_*{schedule} reads these after a prefix change.
func TestSnapshotOutcomesFeedTheVeleroShapedSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	created := time.Unix(1_800_000_000, 0)
	m.InitSchedule("shop", "db")
	m.SnapshotCompleted("shop", "db", created, created.Add(90*time.Second))
	m.SnapshotFailed("shop", "db")
	m.SnapshotFailed("shop", "db")

	want := `
# HELP stateguard_snapshotter_backup_failure_total Snapshots that failed (CSI error or a failed pre hook), by schedule; as velero_backup_failure_total.
# TYPE stateguard_snapshotter_backup_failure_total counter
stateguard_snapshotter_backup_failure_total{namespace="shop",policy="db",schedule="shop/db"} 2
# HELP stateguard_snapshotter_backup_last_successful_timestamp Unix time at which the snapshotter last saw a snapshot of the schedule ready; as velero_backup_last_successful_timestamp.
# TYPE stateguard_snapshotter_backup_last_successful_timestamp gauge
stateguard_snapshotter_backup_last_successful_timestamp{namespace="shop",policy="db",schedule="shop/db"} 1.80000009e+09
# HELP stateguard_snapshotter_backup_success_total Snapshots that became ready, by schedule ("<namespace>/<policy>"); as velero_backup_success_total.
# TYPE stateguard_snapshotter_backup_success_total counter
stateguard_snapshotter_backup_success_total{namespace="shop",policy="db",schedule="shop/db"} 1
# HELP stateguard_snapshotter_snapshots_total Snapshots by policy and outcome (completed, failed).
# TYPE stateguard_snapshotter_snapshots_total counter
stateguard_snapshotter_snapshots_total{namespace="shop",outcome="completed",policy="db"} 1
stateguard_snapshotter_snapshots_total{namespace="shop",outcome="failed",policy="db"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"stateguard_snapshotter_backup_failure_total", "stateguard_snapshotter_backup_last_successful_timestamp",
		"stateguard_snapshotter_backup_success_total", "stateguard_snapshotter_snapshots_total"); err != nil {
		t.Error(err)
	}
	if got := testutil.CollectAndCount(m.backupDuration, "stateguard_snapshotter_backup_duration_seconds"); got != 1 {
		t.Errorf("duration series = %d, want 1", got)
	}
	if got := testutil.ToFloat64(m.Missed.WithLabelValues("shop", "db")); got != 0 {
		t.Errorf("missed slots after InitSchedule = %v, want 0", got)
	}
}

// Every metric of the snapshotter carries the one prefix.
func TestEveryNameHasThePrefix(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	m.InitSchedule("shop", "db")
	m.SnapshotCompleted("shop", "db", time.Unix(0, 0), time.Unix(1, 0))
	m.NewestReadyAge.WithLabelValues("shop", "data").Set(1)
	m.RetentionDeletions.WithLabelValues("shop", "db", "x").Inc()
	m.HookDuration.WithLabelValues("shop", "db", "pre", "ok").Observe(1)
	m.RestoreTests.WithLabelValues("shop", "db", "passed").Inc()
	m.Pins.WithLabelValues("pin", "applied").Inc()
	m.PolicyErrors.WithLabelValues("shop", "db", "InvalidSchedule").Inc()
	m.Observations.WithLabelValues("change").Inc()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) != 14 {
		t.Errorf("gathered %d metric families, want 14", len(mfs))
	}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "stateguard_snapshotter_") {
			t.Errorf("metric %s lacks the stateguard_snapshotter_ prefix", mf.GetName())
		}
	}
}
