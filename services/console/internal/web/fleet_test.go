package web

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stateguard/stateguard/services/console/internal/correlator"
)

var now = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

func TestPostureOf(t *testing.T) {
	soon, later := now.Add(3*24*time.Hour), now.Add(60*24*time.Hour)
	for _, tt := range []struct {
		name    string
		app     correlator.AppSummary
		posture string
		reasons []string
	}{
		{"an open incident is an incident, whatever else holds", correlator.AppSummary{OpenIncidents: []string{"i1"},
			RunningVerdicts: map[string]string{"v2": correlator.Vulnerable}, KnownGood: map[string][]string{"data": {"s1"}}, Snapshots: 2},
			PostureIncident, []string{"1 open incident", "vulnerable version runs: v2"}},
		{"a clean running version with a known-good and a distant expiry is ok", correlator.AppSummary{
			RunningVerdicts: map[string]string{"v1": correlator.Clean}, KnownGood: map[string][]string{"data": {"s1"}}, Snapshots: 1, CertNotAfter: &later},
			PostureOK, nil},
		{"an unscanned running version is a risk", correlator.AppSummary{
			RunningVerdicts: map[string]string{"v1": correlator.Unknown}, KnownGood: map[string][]string{"data": {"s1"}}, Snapshots: 1},
			PostureAtRisk, []string{"unscanned version runs: v1"}},
		{"snapshots without a known-good one are a risk", correlator.AppSummary{
			RunningVerdicts: map[string]string{"v1": correlator.Clean}, Snapshots: 3},
			PostureAtRisk, []string{"no known-good snapshot"}},
		{"a certificate expiring within seven days is a risk", correlator.AppSummary{
			RunningVerdicts: map[string]string{"v1": correlator.Clean}, KnownGood: map[string][]string{"data": {"s1"}}, Snapshots: 1, CertNotAfter: &soon},
			PostureAtRisk, []string{"certificate expires 2026-12-10"}},
		{"an app without volumes nor versions is ok", correlator.AppSummary{}, PostureOK, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, reasons := PostureOf(tt.app, now)
			if p != tt.posture {
				t.Errorf("posture %q, want %q", p, tt.posture)
			}
			if diff := cmp.Diff(tt.reasons, reasons); diff != "" {
				t.Errorf("reasons (-want +got):\n%s", diff)
			}
		})
	}
}

func randomRows(r *rand.Rand, n int) []Row {
	verdicts := []string{correlator.Clean, correlator.Vulnerable, correlator.Unknown}
	rows := make([]Row, n)
	for i := range rows {
		a := correlator.AppSummary{Namespace: fmt.Sprintf("ns-%d", r.IntN(n/3+1)), App: fmt.Sprintf("app-%d", i), Snapshots: r.IntN(3),
			RunningVerdicts: map[string]string{"v": verdicts[r.IntN(3)]}}
		if r.IntN(2) == 0 {
			a.KnownGood = map[string][]string{"data": {"s"}}
			a.KnownGoodTimes = map[string]time.Time{"data": now.Add(-time.Duration(r.IntN(1000)) * time.Hour)}
		}
		if r.IntN(5) == 0 {
			a.OpenIncidents = []string{"i"}
		}
		if r.IntN(2) == 0 {
			na := now.Add(time.Duration(r.IntN(2000)) * time.Hour)
			a.CertNotAfter = &na
		}
		a.RunningFindings.Critical, a.RunningFindings.High = r.IntN(3), r.IntN(3)
		rows[i] = NewRow(a, now)
	}
	return rows
}

func names(rs []Row) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Namespace+"/"+r.App)
	}
	return out
}

// The first page is selected without sorting the fleet: it must be the
// head of the fully sorted fleet (one page holding everything is sorted in
// full), for every order and filter.
func TestFleetFirstPageIsTheSortedFleetsFirstPage(t *testing.T) {
	rows := randomRows(rand.New(rand.NewPCG(1, 2)), 2000)
	for _, sort := range sortOrders {
		for _, posture := range []string{"", PostureIncident, PostureAtRisk, PostureOK} {
			got := Fleet(slices.Clone(rows), Query{Sort: sort, Posture: posture, Page: 1, PageSize: 50})
			full := Fleet(slices.Clone(rows), Query{Sort: sort, Posture: posture, Page: 1, PageSize: len(rows)})
			want := full.Rows[:min(50, len(full.Rows))]
			if diff := cmp.Diff(names(want), names(got.Rows)); diff != "" {
				t.Errorf("sort %s posture %q (-want +got):\n%s", sort, posture, diff)
			}
			for _, row := range got.Rows {
				if posture != "" && row.Posture != posture {
					t.Errorf("sort %s: a %s row on the %s page", sort, row.Posture, posture)
				}
			}
		}
	}
}

// smallest is the partial selection Fleet uses for the first page: it
// must return exactly the n first rows of a full sort.
func TestSmallestIsTheHeadOfTheSort(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{1, 7, 50, 300} {
		rows := randomRows(r, 1000)
		ptrs := make([]*Row, len(rows))
		for i := range rows {
			ptrs[i] = &rows[i]
		}
		order := func(a, b *Row) int {
			if c := a.OldestKnownGood.Compare(b.OldestKnownGood); c != 0 {
				return c
			}
			return compareNames(a, b)
		}
		got := smallest(slices.Clone(ptrs), n, order)
		want := slices.Clone(ptrs)
		slices.SortFunc(want, order)
		want = want[:n]
		var g, w []string
		for i := range got {
			g, w = append(g, got[i].App), append(w, want[i].App)
		}
		if diff := cmp.Diff(w, g); diff != "" {
			t.Errorf("n=%d (-want +got):\n%s", n, diff)
		}
	}
}

func compareNames(a, b *Row) int {
	if a.Namespace != b.Namespace {
		if a.Namespace < b.Namespace {
			return -1
		}
		return 1
	}
	if a.App < b.App {
		return -1
	}
	if a.App > b.App {
		return 1
	}
	return 0
}

func TestFleetFiltersByNamespaceAndPages(t *testing.T) {
	rows := randomRows(rand.New(rand.NewPCG(5, 6)), 300)
	q := Query{Namespace: rows[0].Namespace, PageSize: 2, Page: 99}
	pg := Fleet(rows, q)
	if pg.Page != pg.Pages {
		t.Errorf("page 99 of %d served as page %d, want the last", pg.Pages, pg.Page)
	}
	for _, r := range pg.Rows {
		if r.Namespace != q.Namespace {
			t.Errorf("row of %s on the page of %s", r.Namespace, q.Namespace)
		}
	}
	n := 0
	for _, c := range pg.Counts {
		n += c
	}
	if n != len(rows) {
		t.Errorf("posture counts sum to %d, want every app (%d)", n, len(rows))
	}
}
