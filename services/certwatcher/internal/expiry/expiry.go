package expiry

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stateguard/stateguard/pkg/events"
)

// Expired is the name of the threshold crossed at notAfter.
const Expired = "expired"

// Threshold is crossed when less than Before is left until notAfter; the
// Expired threshold has Before 0 and is crossed once notAfter has passed.
type Threshold struct {
	Name   string
	Before time.Duration
}

// DefaultThresholds are 30d, 14d, 7d, 1d and expired.
var DefaultThresholds = []string{"30d", "14d", "7d", "1d", Expired}

// ParseThresholds parses names such as 30d, 36h or expired into thresholds
// sorted from the earliest warning to expired. Duplicates are errors.
func ParseThresholds(names []string) ([]Threshold, error) {
	var out []Threshold
	seen := map[time.Duration]string{}
	for _, n := range names {
		n = strings.TrimSpace(strings.ToLower(n))
		th, err := parseOne(n)
		if err != nil {
			return nil, err
		}
		if prev, dup := seen[th.Before]; dup {
			return nil, fmt.Errorf("threshold %q repeats %q", n, prev)
		}
		seen[th.Before] = n
		out = append(out, th)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no thresholds")
	}
	slices.SortFunc(out, func(a, b Threshold) int { return -cmpDur(a.Before, b.Before) })
	return out, nil
}

func cmpDur(a, b time.Duration) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func parseOne(n string) (Threshold, error) {
	if n == Expired {
		return Threshold{Name: Expired}, nil
	}
	if d, ok := strings.CutSuffix(n, "d"); ok {
		days, err := strconv.ParseFloat(d, 64)
		if err != nil || days <= 0 || math.IsInf(days, 0) || days > 3650 {
			return Threshold{}, fmt.Errorf("threshold %q: want a positive number of days such as 30d", n)
		}
		return Threshold{Name: n, Before: time.Duration(days * 24 * float64(time.Hour))}, nil
	}
	dur, err := time.ParseDuration(n)
	if err != nil || dur <= 0 {
		return Threshold{}, fmt.Errorf("threshold %q: want 30d, 36h or expired", n)
	}
	return Threshold{Name: n, Before: dur}, nil
}

// Crossed reports whether th is crossed at now for a certificate valid
// until notAfter.
func (th Threshold) Crossed(notAfter, now time.Time) bool {
	left := notAfter.Sub(now)
	if th.Before == 0 {
		return !now.Before(notAfter)
	}
	return left <= th.Before
}

// Decision says what to report for one certificate at one instant.
type Decision struct {
	// Fire is the threshold to report; empty Name when nothing is due.
	Fire Threshold
	// Mark are the thresholds to remember as reported: Fire and the
	// milder thresholds it supersedes.
	Mark []Threshold
}

// Due decides what to report for a certificate valid until notAfter at now,
// given which thresholds were reported before. Only the most severe crossed
// threshold not yet reported fires; milder crossed thresholds are marked
// with it, so a certificate first seen 3 days before expiry yields one 7d
// report, not three.
func Due(notAfter, now time.Time, ths []Threshold, reported func(Threshold) bool) Decision {
	var crossed []Threshold
	for _, th := range ths {
		if th.Crossed(notAfter, now) {
			crossed = append(crossed, th)
		}
	}
	if len(crossed) == 0 {
		return Decision{}
	}
	worst := crossed[len(crossed)-1]
	if reported(worst) {
		return Decision{}
	}
	d := Decision{Fire: worst}
	for _, th := range crossed {
		if !reported(th) {
			d.Mark = append(d.Mark, th)
		}
	}
	return d
}

// DaysLeft is the time left until notAfter in days, rounded to hundredths;
// negative once expired.
func DaysLeft(notAfter, now time.Time) float64 {
	return math.Round(notAfter.Sub(now).Hours()/24*100) / 100
}

// Key identifies one certificate at one source for de-duplication.
type Key struct {
	Source events.CertificateSource
	Serial string
}

// String is namespace/secret/key/serial, or path/serial for files.
func (k Key) String() string {
	if k.Source.Path != "" {
		return "file:" + k.Source.Path + "/" + k.Serial
	}
	return k.Source.Namespace + "/" + k.Source.Secret + "/" + k.Source.Key + "/" + k.Serial
}

// MarkKey is the name under which a reported threshold is remembered; it
// is a valid JetStream KV key.
func MarkKey(k Key, th Threshold) string {
	return "expiry." + digest(k.String()+"/"+th.Name)
}

// EventID is the deterministic id of the expiring event of k crossing th:
// the same fact always gets the same id, so JetStream drops repeats.
func EventID(k Key, th Threshold) string {
	return "certificate-expiring-" + digest(k.String()+"/"+th.Name)
}

func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:16])
}
