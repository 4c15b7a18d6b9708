package model

import (
	"slices"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/correlator/internal/ordered"
)

// The version verdict rules: pure functions of an application's uploads,
// the operators' dismissals and the rules (verdictOf, uploadRef,
// openFindings), and verdicts, the per-application memo around them.

// verdictOf is the verdict of the version key from the uploads that cover
// it: vulnerable when the latest upload of any SARIF category has open
// findings at or above the threshold, clean when none has, unknown without
// an upload.
func verdictOf(r Rules, key string, uploads []*Upload, dismissals map[string]*Dismissal) VersionView {
	latest := map[string]*Upload{}
	for _, u := range uploads {
		if o, ok := latest[u.Category]; !ok || newer(u, o) {
			latest[u.Category] = u
		}
	}
	v := VersionView{Version: key, Verdict: Unknown}
	if len(latest) > 0 {
		v.Verdict = Clean
	}
	for _, cat := range ordered.Keys(latest) {
		ref := uploadRef(r, latest[cat], dismissals)
		if ref.Vulnerable {
			v.Verdict = Vulnerable
		}
		v.Uploads = append(v.Uploads, ref)
	}
	return v
}

// uploadRef is what one upload says of a version: its open findings
// (openFindings), the rules and severities behind them, and whether one of
// them points at exposed keys (Rules.isSecretFinding).
func uploadRef(r Rules, u *Upload, dismissals map[string]*Dismissal) UploadRef {
	ref := UploadRef{UploadID: u.ID, EventID: u.EventID, Category: u.Category, ReceivedAt: u.ReceivedAt, Counts: u.Counts}
	ref.Open = openFindings(r.Threshold, u, dismissals)
	ref.Vulnerable = ref.Open > 0
	for _, f := range u.Findings {
		if f.Suppressed || dismissed(dismissals, u.App, f) {
			continue
		}
		if sev, err := ParseSeverity(f.Severity); err == nil && sev >= r.Threshold {
			ref.RuleIDs, _ = setAdd(ref.RuleIDs, f.RuleID)
			ref.Severities, _ = setAdd(ref.Severities, sev.String())
		}
		if r.isSecretFinding(f) {
			ref.Secret = true
		}
	}
	if ref.Vulnerable && len(ref.Severities) == 0 {
		ref.Severities = severitiesOf(u.Counts, r.Threshold)
	}
	return ref
}

// openFindings counts the findings of u at or above t that are open: not
// suppressed in the SARIF log (u.Suppressed) and not dismissed by an
// operator (matched in u's findings by rule id and fingerprint).
func openFindings(t Severity, u *Upload, dismissals map[string]*Dismissal) int {
	n := atOrAbove(u.Counts, t)
	if u.Suppressed != nil {
		n -= atOrAbove(*u.Suppressed, t)
	}
	for _, f := range u.Findings {
		if sev, err := ParseSeverity(f.Severity); err == nil && sev >= t && !f.Suppressed && dismissed(dismissals, u.App, f) {
			n--
		}
	}
	return max(n, 0)
}

// dismissed reports whether an operator dismissed f, by its fingerprint
// or every finding of its rule.
func dismissed(dismissals map[string]*Dismissal, app string, f Finding) bool {
	if len(dismissals) == 0 {
		return false
	}
	if _, ok := dismissals[dismissalKey(app, f.RuleID, "")]; ok {
		return true
	}
	_, ok := dismissals[dismissalKey(app, f.RuleID, f.Fingerprint)]
	return ok && f.Fingerprint != ""
}

func atOrAbove(c events.SeverityCounts, t Severity) int {
	n := 0
	for s, count := range []int{c.None, c.Low, c.Medium, c.High, c.Critical} {
		if Severity(s) >= t {
			n += count
		}
	}
	return n
}

func severitiesOf(c events.SeverityCounts, t Severity) []string {
	var out []string
	for s, count := range []int{c.None, c.Low, c.Medium, c.High, c.Critical} {
		if Severity(s) >= t && count > 0 {
			out = append(out, Severity(s).String())
		}
	}
	slices.Sort(out)
	return out
}

// verdicts memoises verdictOf for one application: its uploads by version
// key, and each key's verdict once asked for. The cache keeps it between
// events while the application's uploads stay the same.
type verdicts struct {
	r     Rules
	st    *State
	app   string
	byKey map[string][]*Upload // nil until a key misses the cache (index)
	cache map[string]VersionView
}

func newVerdicts(r Rules, st *State, app string) *verdicts {
	return &verdicts{r: r, st: st, app: app, cache: map[string]VersionView{}}
}

// index groups the application's uploads by version key.
func (vd *verdicts) index() {
	vd.byKey = map[string][]*Upload{}
	for _, u := range vd.st.uploadsOf(vd.app) {
		for _, k := range u.Keys {
			vd.byKey[k] = append(vd.byKey[k], u)
		}
	}
}

// release drops the uploads by key between events: the verdicts asked for
// stay in the cache, and a key not asked for yet (a new version on a
// snapshot) indexes the same uploads again. Kept for every application,
// the index was a tenth of the views the cache keeps in memory.
func (vd *verdicts) release() { vd.byKey = nil }

// of is verdictOf(key), memoised.
func (vd *verdicts) of(key string) VersionView {
	if v, ok := vd.cache[key]; ok {
		return v
	}
	if vd.byKey == nil {
		vd.index()
	}
	v := verdictOf(vd.r, key, vd.byKey[key], vd.st.Dismissals)
	vd.cache[key] = v
	return v
}

// ofWorkload is the verdict of a version a workload ran: by digest, else by
// the workload's version label, else by its commit (commitKeys).
func (vd *verdicts) ofWorkload(w Workload, key string) VersionView {
	v := vd.of(key)
	if v.Verdict != Unknown {
		return v
	}
	var alt []string
	if w.Label != "" {
		alt = append(alt, "version:"+w.Label)
	}
	for _, k := range append(alt, commitKeys(w)...) {
		if lv := vd.of(k); lv.Verdict != Unknown {
			lv.Version = key
			return lv
		}
	}
	return v
}
