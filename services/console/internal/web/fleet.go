package web

import (
	"cmp"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/stateguard/stateguard/services/console/internal/correlator"
)

// Postures of an application, worst last.
const (
	PostureOK       = "ok"
	PostureAtRisk   = "at risk"
	PostureIncident = "incident"
)

// certSoon is how close a certificate's expiry makes an app at risk (the
// correlator's default rotation threshold).
const certSoon = 7 * 24 * time.Hour

// PostureOf is the rule of the fleet page: an app is in **incident** while
// it has an open incident; **at risk** when a running version is not
// scanned clean (vulnerable, or never scanned), when it has snapshots but
// no known-good one, or when a certificate it mounts expires within seven
// days; **ok** otherwise. The reasons say which.
func PostureOf(a correlator.AppSummary, now time.Time) (string, []string) {
	var reasons []string
	if n := len(a.OpenIncidents); n > 0 {
		reasons = append(reasons, plural(n, "open incident", "open incidents"))
	}
	for _, v := range slices.Sorted(maps.Keys(a.RunningVerdicts)) {
		switch a.RunningVerdicts[v] {
		case correlator.Vulnerable:
			reasons = append(reasons, "vulnerable version runs: "+short(v))
		case correlator.Unknown:
			reasons = append(reasons, "unscanned version runs: "+short(v))
		}
	}
	if a.Snapshots > 0 && len(a.KnownGood) == 0 {
		reasons = append(reasons, "no known-good snapshot")
	}
	if a.CertNotAfter != nil && a.CertNotAfter.Sub(now) < certSoon {
		reasons = append(reasons, "certificate expires "+a.CertNotAfter.UTC().Format("2006-01-02"))
	}
	switch {
	case len(a.OpenIncidents) > 0:
		return PostureIncident, reasons
	case len(reasons) > 0:
		return PostureAtRisk, reasons
	}
	return PostureOK, nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return itoa(n) + " " + many
}

// short abbreviates a digest for display (sha256:0123456789ab).
func short(v string) string {
	if strings.HasPrefix(v, "sha256:") && len(v) > 19 {
		return v[:19]
	}
	return v
}

// Row is one application of the fleet page.
type Row struct {
	correlator.AppSummary
	Posture string
	Reasons []string
	// NewestKnownGood is the newest known-good snapshot's time over the
	// app's PVCs (zero without any), OldestKnownGood the oldest of the
	// per-PVC newest ones: the age the page shows is the worst PVC's.
	OldestKnownGood time.Time
	KnownGoodPVCs   []PVCKnownGood
}

// PVCKnownGood is a PVC's newest known-good snapshot.
type PVCKnownGood struct {
	PVC      string
	Snapshot string
	Time     time.Time
}

// NewRow computes a row's posture and known-good columns.
func NewRow(a correlator.AppSummary, now time.Time) Row {
	r := Row{AppSummary: a}
	r.Posture, r.Reasons = PostureOf(a, now)
	for _, pvc := range slices.Sorted(maps.Keys(a.KnownGood)) {
		names := a.KnownGood[pvc]
		k := PVCKnownGood{PVC: pvc, Time: a.KnownGoodTimes[pvc]}
		if len(names) > 0 {
			k.Snapshot = names[len(names)-1]
		}
		r.KnownGoodPVCs = append(r.KnownGoodPVCs, k)
		if r.OldestKnownGood.IsZero() || (!k.Time.IsZero() && k.Time.Before(r.OldestKnownGood)) {
			r.OldestKnownGood = k.Time
		}
	}
	return r
}

// Query is what the fleet page is asked for.
type Query struct {
	Namespace string
	Posture   string
	Sort      string
	Page      int
	PageSize  int
}

// Sort orders of the fleet page.
var sortOrders = []string{"posture", "app", "namespace", "known-good", "cert", "findings"}

func postureRank(p string) int {
	switch p {
	case PostureIncident:
		return 0
	case PostureAtRisk:
		return 1
	}
	return 2
}

// FleetPage is one page of the fleet.
type FleetPage struct {
	Rows       []Row
	Total      int // rows matching the filters
	Page       int
	Pages      int
	Namespaces []string
	Counts     map[string]int // per posture, over every app
}

// Fleet is the fleet page's rule: keep the rows of the namespace and
// posture asked for, order them (worst posture first by default, then
// namespace and app; "known-good" oldest first, "cert" soonest first,
// "findings" most first), and cut the page.
func Fleet(all []Row, q Query) FleetPage {
	out := FleetPage{Counts: map[string]int{}}
	nss := map[string]bool{}
	kept := make([]*Row, 0, len(all))
	for i := range all {
		r := &all[i]
		out.Counts[r.Posture]++
		nss[r.Namespace] = true
		if (q.Namespace == "" || r.Namespace == q.Namespace) && (q.Posture == "" || r.Posture == q.Posture) {
			kept = append(kept, r)
		}
	}
	out.Namespaces = slices.Sorted(maps.Keys(nss))
	byName := func(a, b *Row) int { return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.App, b.App)) }
	var order func(a, b *Row) int
	switch q.Sort {
	case "app":
		order = func(a, b *Row) int { return cmp.Or(cmp.Compare(a.App, b.App), cmp.Compare(a.Namespace, b.Namespace)) }
	case "namespace":
		order = byName
	case "known-good":
		order = func(a, b *Row) int { return cmp.Or(a.OldestKnownGood.Compare(b.OldestKnownGood), byName(a, b)) }
	case "cert":
		order = func(a, b *Row) int { return cmp.Or(compareExpiry(a.CertNotAfter, b.CertNotAfter), byName(a, b)) }
	case "findings":
		order = func(a, b *Row) int {
			return cmp.Or(cmp.Compare(b.RunningFindings.Critical, a.RunningFindings.Critical),
				cmp.Compare(b.RunningFindings.High, a.RunningFindings.High), byName(a, b))
		}
	default:
		order = func(a, b *Row) int {
			return cmp.Or(cmp.Compare(postureRank(a.Posture), postureRank(b.Posture)), byName(a, b))
		}
	}
	size := max(q.PageSize, 1)
	out.Total = len(kept)
	out.Pages = max((len(kept)+size-1)/size, 1)
	out.Page = min(max(q.Page, 1), out.Pages)
	from, to := (out.Page-1)*size, min(out.Page*size, len(kept))
	// Only the page is needed in order: select it without sorting the
	// whole fleet when the page is the first (the common case).
	if out.Page == 1 && len(kept) > 4*size {
		kept = smallest(kept, to, order)
	} else {
		slices.SortFunc(kept, order)
	}
	out.Rows = make([]Row, 0, to-from)
	for _, r := range kept[from:to] {
		out.Rows = append(out.Rows, *r)
	}
	return out
}

// smallest returns the n first rows of rs in order (a partial selection).
func smallest(rs []*Row, n int, order func(a, b *Row) int) []*Row {
	top := make([]*Row, 0, n+1)
	for _, r := range rs {
		if len(top) == n && order(r, top[n-1]) >= 0 {
			continue
		}
		i, _ := slices.BinarySearchFunc(top, r, order)
		top = slices.Insert(top, i, r)
		if len(top) > n {
			top = top[:n]
		}
	}
	return top
}

// compareExpiry orders certificate expiries soonest first, none last.
func compareExpiry(a, b *time.Time) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return 1
	case b == nil:
		return -1
	}
	return a.Compare(*b)
}
