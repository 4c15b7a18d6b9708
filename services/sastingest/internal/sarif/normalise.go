package sarif

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Severity bands, as GitHub code scanning maps security-severity scores.
const (
	SeverityCritical = "critical"
	SeverityHigh     = "high"
	SeverityMedium   = "medium"
	SeverityLow      = "low"
	SeverityNone     = "none"
)

// Levels of a SARIF result.
const (
	LevelError   = "error"
	LevelWarning = "warning"
	LevelNote    = "note"
	LevelNone    = "none"
)

// SeverityOf maps a security-severity score to a band: ≥9.0 critical,
// 7.0–8.9 high, 4.0–6.9 medium, 0.1–3.9 low, anything else (no score, 0,
// negative, NaN) none.
func SeverityOf(score float64) string {
	switch {
	case math.IsNaN(score):
		return SeverityNone
	case score >= 9.0:
		return SeverityCritical
	case score >= 7.0:
		return SeverityHigh
	case score >= 4.0:
		return SeverityMedium
	case score >= 0.1:
		return SeverityLow
	default:
		return SeverityNone
	}
}

// SeverityRank orders bands: critical 4 … none 0.
func SeverityRank(s string) int {
	switch s {
	case SeverityCritical:
		return 4
	case SeverityHigh:
		return 3
	case SeverityMedium:
		return 2
	case SeverityLow:
		return 1
	}
	return 0
}

var cweRe = regexp.MustCompile(`(?i)\bcwe[-_/: ]?0*([0-9]{1,6})\b`)

// CWEsFromTags returns the CWE ids named by tags such as
// "external/cwe/cwe-079" (CodeQL), "CWE-79: Improper …" (Semgrep) or
// "cwe-89", as "CWE-79".
func CWEsFromTags(tags []string) []string {
	var out []string
	for _, t := range tags {
		if !mentionsCWE(t) {
			continue
		}
		for _, m := range cweRe.FindAllStringSubmatch(t, -1) {
			out = appendCWE(out, m[1])
		}
	}
	return out
}

// mentionsCWE reports whether s contains "cwe" in any case: most tags do
// not, and this is much cheaper than the regular expression.
func mentionsCWE(s string) bool {
	for i := 0; i+3 <= len(s); i++ {
		if (s[i]|0x20) == 'c' && (s[i+1]|0x20) == 'w' && (s[i+2]|0x20) == 'e' {
			return true
		}
	}
	return false
}

// cweFromTaxon turns a CWE taxonomy id ("79", "CWE-79") into "CWE-79".
func cweFromTaxon(id string) string {
	id = strings.TrimSpace(id)
	if m := cweRe.FindStringSubmatch(id); m != nil {
		id = m[1]
	}
	n, err := strconv.Atoi(strings.TrimLeft(id, "0"))
	if err != nil || n <= 0 {
		return ""
	}
	return "CWE-" + strconv.Itoa(n)
}

func appendCWE(list []string, digits string) []string {
	c := cweFromTaxon(digits)
	if c == "" || slices.Contains(list, c) {
		return list
	}
	return append(list, c)
}

// Fingerprint is the stable identity of a finding across uploads: a 64-bit
// FNV-1a hash of the rule id and the result's partialFingerprints when it
// has any, else of the rule id, the file, and the snippet (or, without a
// snippet, the line and message). It is shown as 16 hex digits.
type Fingerprint uint64

// String returns the fingerprint as 16 lower-case hex digits.
func (f Fingerprint) String() string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(f))
	return hex.EncodeToString(b[:])
}

// ParseFingerprint reads a fingerprint written by String.
func ParseFingerprint(s string) (Fingerprint, bool) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 8 {
		return 0, false
	}
	return Fingerprint(binary.BigEndian.Uint64(b)), true
}

// fnv64a is FNV-1a, 64 bits, written out so that hashing a result
// allocates nothing.
type fnv64a uint64

const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

// field hashes s and a 0 byte that ends it.
func (h *fnv64a) field(s []byte) {
	v := *h
	for _, c := range s {
		v ^= fnv64a(c)
		v *= fnvPrime64
	}
	v *= fnvPrime64 // ^= 0
	*h = v
}

func (h *fnv64a) fieldString(s string) {
	v := *h
	for i := 0; i < len(s); i++ {
		v ^= fnv64a(s[i])
		v *= fnvPrime64
	}
	v *= fnvPrime64
	*h = v
}

// decimal hashes n written in decimal, as field(strconv.AppendInt(nil, n,
// 10)) would, without the buffer.
func (h *fnv64a) decimal(n int) {
	var b [20]byte
	i := len(b)
	u := uint64(n)
	if n < 0 {
		u = -u
	}
	for {
		i--
		b[i] = byte('0' + u%10)
		u /= 10
		if u == 0 {
			break
		}
	}
	if n < 0 {
		i--
		b[i] = '-'
	}
	h.field(b[i:])
}

// fingerprint hashes the rule id and the partialFingerprints (sorted by
// key) when there are any, else the rule id, the file and the trimmed
// snippet (without one: the line and the message).
func (r *rawResult) fingerprint(ruleID string) Fingerprint {
	h := fnv64a(fnvOffset64)
	h.fieldString(ruleID)
	if len(r.partial) > 0 {
		b := r.partialBytes
		slices.SortFunc(r.partial, func(x, y partialEntry) int { return bytes.Compare(b[x.k0:x.k1], b[y.k0:y.k1]) })
		h.fieldString("partial")
		for _, e := range r.partial {
			h.field(b[e.k0:e.k1])
			h.field(b[e.v0:e.v1])
		}
		return Fingerprint(h)
	}
	h.fieldString(r.file)
	if s := bytes.TrimSpace(r.snippet); len(s) > 0 {
		h.fieldString("snippet")
		h.field(s)
	} else {
		h.decimal(r.line)
		h.field(r.message)
	}
	return Fingerprint(h)
}

// tagSeverityScore maps a severity tag (case-insensitive "critical", "high",
// "medium" or "low") to a score inside GitHub's band of that name, for rules
// that carry no security-severity property. A security-severity, where
// present, wins.
func tagSeverityScore(tag string) (float64, bool) {
	switch strings.ToLower(strings.TrimSpace(tag)) {
	case SeverityCritical:
		return 9.0, true
	case SeverityHigh:
		return 7.0, true
	case SeverityMedium:
		return 4.0, true
	case SeverityLow:
		return 0.1, true
	}
	return 0, false
}
