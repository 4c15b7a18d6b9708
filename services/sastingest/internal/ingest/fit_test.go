package ingest

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stateguard/stateguard/pkg/events"
)

func TestFitPayloadShortensTheListsUntilTheEventFits(t *testing.T) {
	big := events.Finding{Tool: "t", RuleID: strings.Repeat("r", 256), File: strings.Repeat("f", 1024), Severity: "high", Level: "error"}
	pl := &events.SARIFUploaded{UploadID: "x", ResultsTotal: 300}
	for range MaxFindings {
		pl.Findings = append(pl.Findings, big)
	}
	for range MaxNewFindings {
		pl.NewFindings = append(pl.NewFindings, big)
	}
	const limit = 100 << 10
	if err := fitPayload(pl, limit); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(pl)
	if len(b) > limit {
		t.Errorf("payload of %d bytes, over the limit of %d", len(b), limit)
	}
	if !pl.FindingsTruncated || len(pl.Findings) == 0 && len(pl.NewFindings) == MaxNewFindings {
		t.Errorf("findings %d (truncated %v), new findings %d (truncated %v)", len(pl.Findings), pl.FindingsTruncated, len(pl.NewFindings), pl.NewFindingsTruncated)
	}
	if pl.ResultsTotal != 300 {
		t.Errorf("results total changed to %d", pl.ResultsTotal)
	}

	small := &events.SARIFUploaded{UploadID: "x", Findings: []events.Finding{big}}
	if err := fitPayload(small, limit); err != nil || small.FindingsTruncated || len(small.Findings) != 1 {
		t.Errorf("a payload that fits was changed: %v, %d findings", err, len(small.Findings))
	}
}
