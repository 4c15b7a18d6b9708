package sarif

import (
	"strconv"
	"unicode/utf8"
)

// Bounds of what a log can put into an upload's event and status. A log
// may hold a rule id of a megabyte or a hundred thousand tools; the event
// that carries them must stay far below NATS's max payload (1 MB by
// default), or it could never be published. A longer string is cut and
// recorded as an anomaly; a finding's fingerprint is computed from the
// whole string first, so cutting does not merge findings.
const (
	MaxRuleIDBytes      = 256
	MaxToolNameBytes    = 128
	MaxToolVersionBytes = 64
	MaxFileBytes        = 1024
	MaxCWEs             = 16
	// MaxTools bounds the distinct tools of a Summary; the results of
	// further tools are counted under OtherTools.
	MaxTools = 32
	// maxAnomalyText bounds an anomaly's path and reason (a path holds
	// member names, a reason the number that was wrong).
	maxAnomalyText = 256
)

// OtherTools names the tools past MaxTools in a Summary.
const OtherTools = "(other tools)"

// clip cuts s to at most n bytes, on a UTF-8 boundary. cut reports
// whether anything was removed.
func clip(s string, n int) (out string, cut bool) {
	if len(s) <= n {
		return s, false
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i], true
}

// clipText cuts an anomaly's text and says how long it was.
func clipText(s string) string {
	if c, cut := clip(s, maxAnomalyText); cut {
		return c + "… (" + strconv.Itoa(len(s)) + " bytes)"
	}
	return s
}

// boundField cuts a finding's or tool's field to its bound, recording an
// anomaly at path when it was longer.
func (p *parser) boundField(path, field string, s *string, n int) {
	if c, cut := clip(*s, n); cut {
		p.anomaly(path, field+" of "+strconv.Itoa(len(*s))+" bytes cut to "+strconv.Itoa(n))
		*s = c
	}
}
