package model

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Severity is a GitHub security-severity band, ordered.
type Severity int

// Severity bands, lowest first.
const (
	SeverityNone Severity = iota
	SeverityLow
	SeverityMedium
	SeverityHigh
	SeverityCritical
)

var severityNames = []string{"none", "low", "medium", "high", "critical"}

func (s Severity) String() string {
	if s < 0 || int(s) >= len(severityNames) {
		return "unknown"
	}
	return severityNames[s]
}

// ParseSeverity parses none, low, medium, high or critical.
func ParseSeverity(s string) (Severity, error) {
	i := slices.Index(severityNames, strings.ToLower(strings.TrimSpace(s)))
	if i < 0 {
		return 0, fmt.Errorf("severity %q: want one of %s", s, strings.Join(severityNames, ", "))
	}
	return Severity(i), nil
}

// Rules are the correlator's decision rules.
type Rules struct {
	// Threshold: a version is vulnerable when the latest upload of a
	// category has open findings at or above it.
	Threshold Severity
	// UnknownIsClean treats versions without any upload as clean.
	UnknownIsClean bool
	// KeepKnownGood is how many of the newest clean, ready snapshots of each
	// PVC stay pinned.
	KeepKnownGood int
	// SecretCWEs, SecretRules and SecretTags recognise findings that point
	// at exposed keys or credentials (CWE ids as "CWE-798", rule ids
	// compared case-insensitively, tags such as "secret").
	SecretCWEs  []string
	SecretRules []string
	SecretTags  []string
	// RotationThreshold: a certificate with this little time left is
	// rotated unless cert-manager renews it in time.
	RotationThreshold time.Duration
	// RenewalMargin: cert-manager renews in time when its renewalTime is at
	// least this long before notAfter and not already past.
	RenewalMargin time.Duration
	// History bounds the completed snapshots remembered per PVC (the newest
	// ones, plus every snapshot that must stay pinned and the PVC's lineage
	// boundaries: lineageBoundaries).
	History int
	// Repositories maps a repository (owner/name, NormaliseRepository) to
	// the applications that run its code: an upload of it that names no
	// application joins them (JoinTargets), before any workload does.
	Repositories map[string][]RepoTarget
}

// DefaultRules are the rules of the issue.
func DefaultRules() Rules {
	return Rules{
		Threshold:         SeverityHigh,
		KeepKnownGood:     1,
		SecretCWEs:        []string{"CWE-798", "CWE-321", "CWE-522", "CWE-312", "CWE-259"},
		SecretRules:       []string{"G101", "generic-api-key", "private-key", "hardcoded-credentials", "secret"},
		SecretTags:        []string{"secret", "secrets", "credentials"},
		RotationThreshold: 7 * 24 * time.Hour,
		RenewalMargin:     24 * time.Hour,
		History:           32,
	}
}

// Validate reports rules that cannot work.
func (r Rules) Validate() error {
	switch {
	case r.Threshold < SeverityLow || r.Threshold > SeverityCritical:
		return fmt.Errorf("rules: threshold %s: want low, medium, high or critical", r.Threshold)
	case r.KeepKnownGood < 1:
		return fmt.Errorf("rules: keep_known_good %d < 1", r.KeepKnownGood)
	case r.RotationThreshold <= 0:
		return fmt.Errorf("rules: rotation_threshold %s <= 0", r.RotationThreshold)
	case r.RenewalMargin < 0:
		return fmt.Errorf("rules: renewal_margin %s < 0", r.RenewalMargin)
	case r.History < r.KeepKnownGood:
		return fmt.Errorf("rules: history %d < keep_known_good %d", r.History, r.KeepKnownGood)
	}
	for repo, ts := range r.Repositories {
		if NormaliseRepository(repo) != repo {
			return fmt.Errorf("rules: repositories: %q is not owner/name in lower case", repo)
		}
		for _, t := range ts {
			if !namespaceName(t.Namespace) || t.App == "" {
				return fmt.Errorf("rules: repositories: %s: each entry needs a namespace (a Kubernetes name) and an app", repo)
			}
		}
	}
	return nil
}

// isSecretFinding reports whether f points at an exposed key or credential.
func (r Rules) isSecretFinding(f Finding) bool {
	for _, c := range f.CWEs {
		if slices.ContainsFunc(r.SecretCWEs, func(w string) bool { return strings.EqualFold(normCWE(w), normCWE(c)) }) {
			return true
		}
	}
	for _, w := range r.SecretRules {
		if w != "" && strings.Contains(strings.ToLower(f.RuleID), strings.ToLower(w)) {
			return true
		}
	}
	for _, t := range f.Tags {
		if slices.ContainsFunc(r.SecretTags, func(w string) bool { return strings.EqualFold(w, t) }) {
			return true
		}
	}
	return false
}

// normCWE turns "cwe-798", "CWE-798", "798" and
// "external/cwe/cwe-798" into "CWE-798".
func normCWE(s string) string {
	s = strings.ToUpper(strings.TrimSpace(s))
	if i := strings.LastIndex(s, "/"); i >= 0 {
		s = s[i+1:]
	}
	s = strings.TrimPrefix(s, "CWE-")
	s = strings.TrimLeft(s, "0")
	return "CWE-" + s
}

// namespaceName reports whether s is a Kubernetes namespace name (an RFC
// 1123 label).
func namespaceName(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if (s[i] < 'a' || s[i] > 'z') && (s[i] < '0' || s[i] > '9') && s[i] != '-' {
			return false
		}
	}
	return true
}
