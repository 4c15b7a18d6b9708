package model

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/stateguard/stateguard/services/correlator/internal/ordered"
)

// certViews are the namespace's certificates, one view per TLS Secret and
// serial, with the certificate expiry rule applied (certExpiry).
func certViews(r Rules, st *State) []CertView {
	var out []CertView
	for _, name := range ordered.Keys(st.Certs) {
		out = append(out, certViewsOf(r, name, st.Certs[name])...)
	}
	return out
}

// certViewsOf are the views of one TLS Secret's certificate, one per
// serial in serial order: what certViews lists for it.
func certViewsOf(r Rules, name string, c *Cert) []CertView {
	out := make([]CertView, 0, len(c.Observations))
	for _, serial := range ordered.Keys(c.Observations) {
		cv := certView(name, serial, c.Observations[serial], c)
		cv.RenewsInTime = renewsInTime(r, cv)
		cv.NeedsRotation, cv.Reason = certExpiry(r, cv)
		out = append(out, cv)
	}
	return out
}

// certView is what the observations of one serial say: the one with the
// fewest days left, every observation as a cause, and its rotation.
func certView(secret, serial string, obs map[string]*CertObservation, c *Cert) CertView {
	var best CertObservation
	bestID := ""
	var causes []string
	for _, id := range ordered.Keys(obs) {
		if obs[id] == nil {
			continue // not an observation ("null" in a stored state)
		}
		causes = append(causes, id)
		o := *obs[id]
		if bestID == "" || o.DaysLeft < best.DaysLeft {
			best, bestID = o, id
		}
	}
	cv := CertView{
		Secret: secret, Serial: serial, NotAfter: best.NotAfter, DaysLeft: best.DaysLeft,
		ObservedAt:  best.ObservedAt,
		CertManager: best.CertManager, RenewalTime: best.RenewalTime, Causes: causes, Users: c.Users,
	}
	if cv.ObservedAt.IsZero() {
		cv.ObservedAt = best.NotAfter.Add(-time.Duration(best.DaysLeft * float64(24*time.Hour)))
	}
	if rid, ok := c.Rotated[serial]; ok {
		cv.Rotated = true
		cv.Causes = append(cv.Causes, rid)
	}
	cv.LastRotation = lastRotation(c)
	return cv
}

// lastRotation is a Secret's newest rotation: the latest by time, the
// greatest event id among equal times (so the order events arrive in does
// not matter); nil when none is known.
func lastRotation(c *Cert) *RotationRecord {
	var last *RotationRecord
	for _, serial := range ordered.Keys(c.Rotations) {
		r := c.Rotations[serial]
		if last == nil || r.At.After(last.At) || (r.At.Equal(last.At) && r.EventID > last.EventID) {
			last = &r
		}
	}
	return last
}

// renewsInTime: cert-manager renews the certificate in time when its
// renewalTime is at least the renewal margin before notAfter and was not
// already past when the certificate was observed.
func renewsInTime(r Rules, cv CertView) bool {
	if cv.CertManager == "" || cv.RenewalTime == nil {
		return false
	}
	rt := *cv.RenewalTime
	return !rt.After(cv.NotAfter.Add(-r.RenewalMargin)) && !rt.Before(cv.ObservedAt.Add(-time.Hour))
}

// certExpiry is the certificate expiry rule: a certificate with at most
// the rotation threshold left needs a rotation, unless it was rotated
// already or cert-manager renews it in time; reason says why (or why not).
func certExpiry(r Rules, cv CertView) (needsRotation bool, reason string) {
	threshold := r.RotationThreshold.Hours() / 24
	switch {
	case cv.Rotated, cv.DaysLeft > threshold:
		return false, ""
	case cv.RenewsInTime:
		return false, fmt.Sprintf("cert-manager Certificate %s renews at %s, before notAfter %s", cv.CertManager, cv.RenewalTime.Format(time.RFC3339), cv.NotAfter.Format(time.RFC3339))
	}
	reason = fmt.Sprintf("certificate %s expires in %s days (at or below the rotation threshold of %s days)", cv.Serial, trimFloat(cv.DaysLeft), trimFloat(threshold))
	if cv.CertManager != "" {
		reason += "; cert-manager will not renew it in time"
	}
	return true, reason
}

func trimFloat(f float64) string {
	return strings.TrimSuffix(fmt.Sprintf("%.1f", math.Round(f*10)/10), ".0")
}
