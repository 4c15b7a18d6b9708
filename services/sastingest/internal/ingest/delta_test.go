package ingest

import (
	"encoding/binary"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stateguard/stateguard/services/sastingest/internal/sarif"
)

func TestDelta(t *testing.T) {
	tests := []struct {
		name                  string
		prev, cur             []sarif.Fingerprint
		new, fixed, unchanged int
		wantBaseline          []sarif.Fingerprint
	}{
		{"first upload: everything is new", nil, []sarif.Fingerprint{3, 1, 2, 1}, 3, 0, 0, []sarif.Fingerprint{1, 2, 3}},
		{"nothing left: everything is fixed", []sarif.Fingerprint{1, 2}, nil, 0, 2, 0, nil},
		{"some of each", []sarif.Fingerprint{1, 2, 5, 9}, []sarif.Fingerprint{9, 2, 7, 7, 0}, 2, 2, 2, []sarif.Fingerprint{0, 2, 7, 9}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDelta(tt.prev)
			for _, f := range tt.cur {
				d.add(&sarif.Finding{Fingerprint: f, Severity: sarif.SeverityNone})
			}
			b, err := io.ReadAll(d.finish())
			if err != nil {
				t.Fatal(err)
			}
			if d.new != tt.new || d.fixed != tt.fixed || d.unchanged != tt.unchanged {
				t.Errorf("new %d fixed %d unchanged %d, want %d %d %d", d.new, d.fixed, d.unchanged, tt.new, tt.fixed, tt.unchanged)
			}
			var got []sarif.Fingerprint
			for i := 0; i+8 <= len(b); i += 8 {
				got = append(got, sarif.Fingerprint(binary.BigEndian.Uint64(b[i:])))
			}
			if diff := cmp.Diff(tt.wantBaseline, got); diff != "" {
				t.Errorf("baseline (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFingerprintSetAcrossChunks(t *testing.T) {
	var s fingerprintSet
	const n = 3*chunkLen + 17
	for i := n - 1; i >= 0; i-- {
		s.add(sarif.Fingerprint(i / 2)) // every value twice, descending
	}
	s.sort()
	var got []sarif.Fingerprint
	s.each(func(f sarif.Fingerprint) { got = append(got, f) })
	if len(got) != (n+1)/2 {
		t.Fatalf("distinct = %d, want %d", len(got), (n+1)/2)
	}
	for i, f := range got {
		if f != sarif.Fingerprint(i) {
			t.Fatalf("got[%d] = %d", i, f)
		}
	}
	b, _ := io.ReadAll(s.reader())
	if len(b) != 8*len(got) {
		t.Errorf("reader gave %d bytes, want %d", len(b), 8*len(got))
	}
}

func TestNewFindingsListOnlyNewCriticalAndHigh(t *testing.T) {
	d := newDelta([]sarif.Fingerprint{1})
	for _, f := range []sarif.Finding{
		{RuleID: "old", Severity: sarif.SeverityCritical, Fingerprint: 1},
		{RuleID: "crit", Severity: sarif.SeverityCritical, Fingerprint: 2},
		{RuleID: "crit-again", Severity: sarif.SeverityCritical, Fingerprint: 2},
		{RuleID: "high", Severity: sarif.SeverityHigh, Fingerprint: 3},
		{RuleID: "medium", Severity: sarif.SeverityMedium, Fingerprint: 4},
	} {
		d.add(&f)
	}
	d.finish()
	var ids []string
	for _, f := range d.newFindings {
		ids = append(ids, f.RuleID)
	}
	if diff := cmp.Diff([]string{"crit", "high"}, ids); diff != "" {
		t.Errorf("new findings (-want +got):\n%s", diff)
	}
	var top []string
	for _, f := range d.topFindings() {
		top = append(top, f.RuleID)
	}
	if diff := cmp.Diff([]string{"old", "crit", "crit-again", "high", "medium"}, top); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
}
