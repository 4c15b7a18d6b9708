package controller_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestPrinterColumns asks the API server for the table kubectl prints for
// `kubectl get snapshotpolicies`, and checks its columns and values.
func TestPrinterColumns(t *testing.T) {
	ns := namespace(t)
	create(t, pvc(ns, "data", map[string]string{"app": "db"}))
	p := policy(t, ns, "hourly")
	r := newRig(t, ns, p.CreationTimestamp.Time)
	r.clock.SetTime(nextHour(p.CreationTimestamp.Time, 1))
	r.pass()

	raw, err := env.Client.CoreV1().RESTClient().Get().
		AbsPath("/apis/stateguard.io/v1alpha1/namespaces", ns, "snapshotpolicies").
		SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").
		DoRaw(t.Context())
	if err != nil {
		t.Fatalf("get table: %v: %s", err, raw)
	}
	var table struct {
		ColumnDefinitions []struct {
			Name     string `json:"name"`
			Priority int    `json:"priority"`
		} `json:"columnDefinitions"`
		Rows []struct {
			Cells []any `json:"cells"`
		} `json:"rows"`
	}
	if err := json.Unmarshal(raw, &table); err != nil {
		t.Fatal(err)
	}
	var cols []string
	for _, c := range table.ColumnDefinitions {
		if c.Priority == 0 {
			cols = append(cols, c.Name)
		}
	}
	if diff := cmp.Diff([]string{"Name", "Ready", "Reason", "Schedule", "Last Snapshot", "Next Run", "Age"}, cols); diff != "" {
		t.Errorf("columns (-want +got):\n%s", diff)
	}
	if len(table.Rows) != 1 {
		t.Fatalf("%d rows, want 1", len(table.Rows))
	}
	cells := map[string]any{}
	for i, c := range table.ColumnDefinitions {
		cells[c.Name] = table.Rows[0].Cells[i]
	}
	slot := r.clock.Now().Truncate(time.Hour).UTC()
	want := map[string]any{
		"Name":          "hourly",
		"Ready":         "True",
		"Reason":        "Scheduled",
		"Schedule":      "0 * * * *",
		"Last Snapshot": "hourly-data-" + slot.Format("200601021504"),
		"Last Result":   "Succeeded",
		"Next Run":      slot.Add(time.Hour).Format(time.RFC3339),
	}
	delete(cells, "Age")
	if diff := cmp.Diff(want, cells); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
}
