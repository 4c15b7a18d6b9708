package ingest

import (
	"io"
	"slices"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/sastingest/internal/sarif"
)

// delta compares an upload's findings with the previous upload's
// fingerprints. It keeps 8 bytes per result, and bounded lists of findings.
type delta struct {
	prev []sarif.Fingerprint // sorted, unique
	cur  fingerprintSet

	new, fixed, unchanged int

	newFindings  []events.Finding
	newListed    map[sarif.Fingerprint]bool
	newTruncated bool

	// open findings at medium or above, per band (critical, high, medium).
	bands             [3][]events.Finding
	findingsTruncated bool
}

func newDelta(prev []sarif.Fingerprint) *delta {
	return &delta{prev: prev, newListed: map[sarif.Fingerprint]bool{}}
}

func (d *delta) isPrev(f sarif.Fingerprint) bool {
	_, ok := slices.BinarySearch(d.prev, f)
	return ok
}

func (d *delta) add(f *sarif.Finding) {
	d.cur.add(f.Fingerprint)
	rank := sarif.SeverityRank(f.Severity)
	if rank >= 3 && !d.isPrev(f.Fingerprint) && !d.newListed[f.Fingerprint] {
		if len(d.newFindings) < MaxNewFindings {
			d.newFindings = append(d.newFindings, f.Event())
			d.newListed[f.Fingerprint] = true
		} else {
			d.newTruncated = true
		}
	}
	if rank >= 2 {
		b := 4 - rank // critical 0, high 1, medium 2
		if len(d.bands[b]) < MaxFindings {
			d.bands[b] = append(d.bands[b], f.Event())
		} else {
			d.findingsTruncated = true
		}
	}
}

// finish computes new, fixed and unchanged over the distinct fingerprints
// and returns them, ascending, as the next upload's baseline.
func (d *delta) finish() io.Reader {
	d.cur.sort()
	j := 0
	d.cur.each(func(f sarif.Fingerprint) {
		for j < len(d.prev) && d.prev[j] < f {
			d.fixed++
			j++
		}
		if j < len(d.prev) && d.prev[j] == f {
			d.unchanged++
			j++
			return
		}
		d.new++
	})
	d.fixed += len(d.prev) - j
	return d.cur.reader()
}

// topFindings lists the open findings highest first, at most MaxFindings.
func (d *delta) topFindings() []events.Finding {
	var out []events.Finding
	for _, b := range d.bands {
		for _, f := range b {
			if len(out) == MaxFindings {
				d.findingsTruncated = true
				return out
			}
			out = append(out, f)
		}
	}
	return out
}
