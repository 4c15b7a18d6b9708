package sarif

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/stateguard/stateguard/pkg/events"
)

// SupportedVersion is the only SARIF version accepted.
const SupportedVersion = "2.1.0"

// MaxAnomalies bounds the anomalies listed in a Summary; Anomalies counts
// them all.
const MaxAnomalies = 50

// Error says why a document is not an acceptable SARIF 2.1.0 log: the first
// problem found and its JSON path ("$.runs[0].results").
type Error struct {
	Path   string
	Reason string
}

func (e *Error) Error() string { return e.Path + ": " + e.Reason }

// Finding is one normalised result. Parse reuses nothing of it after the
// callback returns except CWEs, which may be shared between findings of the
// same rule and must not be modified.
type Finding struct {
	Tool        string
	RuleID      string
	Severity    string
	Level       string
	CWEs        []string
	File        string
	Line        int
	Fingerprint Fingerprint
}

// Event returns the finding as the event contract's type.
func (f *Finding) Event() events.Finding {
	return events.Finding{
		Tool:        f.Tool,
		RuleID:      f.RuleID,
		Severity:    f.Severity,
		Level:       f.Level,
		CWEs:        slices.Clone(f.CWEs),
		File:        f.File,
		Line:        f.Line,
		Fingerprint: f.Fingerprint.String(),
	}
}

// Anomaly is a malformed field that was skipped: the result it is in still
// counts.
type Anomaly struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// Summary is what a log holds, counted.
type Summary struct {
	Version      string
	Runs         int
	Tools        []events.Tool
	ByTool       []events.ToolCounts
	ResultsTotal int
	BySeverity   events.SeverityCounts
	ByLevel      events.LevelCounts
	Anomalies    int
	AnomalyList  []Anomaly
}

// Option configures Parse.
type Option func(*parser)

// WithSpoolDir sets where results read before their run's tool are kept
// once there are many of them (default: the system temp dir).
func WithSpoolDir(dir string) Option { return func(p *parser) { p.spoolDir = dir } }

// Parse reads one SARIF log from r and calls fn for every result, in order
// (the results of a run that come before its tool are called when the tool
// has been read). An error from fn stops the parse and is returned as is;
// so is an error from r (a size limit, a broken gzip stream). A document
// that is not SARIF 2.1.0 gives an *Error.
func Parse(r io.Reader, fn func(*Finding) error, opts ...Option) (*Summary, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	if b, err := br.Peek(3); err == nil && string(b) == "\xef\xbb\xbf" {
		_, _ = br.Discard(3)
	}
	p := &parser{dec: json.NewDecoder(&spaceReader{r: br}), fn: fn, sum: &Summary{}}
	for _, o := range opts {
		o(p)
	}
	if err := p.log(); err != nil {
		return nil, err
	}
	return p.sum, nil
}

type parser struct {
	spoolDir string
	dec      *json.Decoder
	fn       func(*Finding) error
	sum      *Summary
	f        Finding
	rr       rawResult
}

// fail turns a decoder error into what Parse returns.
func (p *parser) fail(path string, err error) error {
	var syn *json.SyntaxError
	switch {
	case errors.As(err, &syn):
		return &Error{Path: path, Reason: fmt.Sprintf("not valid JSON at byte %d: %v", syn.Offset, syn)}
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return &Error{Path: path, Reason: "unexpected end of JSON: the document is truncated"}
	}
	var ute *json.UnmarshalTypeError
	if errors.As(err, &ute) {
		return &Error{Path: path, Reason: fmt.Sprintf("%s must not be a JSON %s", describe(path), ute.Value)}
	}
	return err
}

func describe(path string) string {
	if i := strings.LastIndexAny(path, ".["); i >= 0 {
		return strings.TrimSuffix(path[i+1:], "]")
	}
	return path
}

func (p *parser) anomaly(path, reason string) {
	p.sum.Anomalies++
	if len(p.sum.AnomalyList) < MaxAnomalies {
		p.sum.AnomalyList = append(p.sum.AnomalyList, Anomaly{Path: path, Reason: reason})
	}
}

func (p *parser) token(path string) (json.Token, error) {
	t, err := p.dec.Token()
	if err != nil {
		return nil, p.fail(path, err)
	}
	return t, nil
}

func (p *parser) log() error {
	t, err := p.dec.Token()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return &Error{Path: "$", Reason: "empty body: not a SARIF log"}
		}
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return &Error{Path: "$", Reason: fmt.Sprintf("not JSON: %v", syn)}
		}
		return p.fail("$", err)
	}
	if d, ok := t.(json.Delim); !ok || d != '{' {
		return &Error{Path: "$", Reason: "not a SARIF log: the document is not a JSON object"}
	}
	var version *string
	sawRuns := false
	for p.dec.More() {
		kt, err := p.token("$")
		if err != nil {
			return err
		}
		key, _ := kt.(string)
		switch key {
		case "version":
			var v any
			if err := p.dec.Decode(&v); err != nil {
				return p.fail("$.version", err)
			}
			s, ok := v.(string)
			if !ok {
				return &Error{Path: "$.version", Reason: fmt.Sprintf("version must be the string %q", SupportedVersion)}
			}
			if s != SupportedVersion {
				return &Error{Path: "$.version", Reason: fmt.Sprintf("SARIF version %q is not supported: only %s is", s, SupportedVersion)}
			}
			version = &s
		case "runs":
			sawRuns = true
			if err := p.runs(); err != nil {
				return err
			}
		default:
			if err := p.skip("$." + key); err != nil {
				return err
			}
		}
	}
	if _, err := p.token("$"); err != nil { // closing '}'
		return err
	}
	if _, err := p.dec.Token(); !errors.Is(err, io.EOF) {
		return &Error{Path: "$", Reason: "data after the end of the SARIF log"}
	}
	if version == nil {
		return &Error{Path: "$.version", Reason: fmt.Sprintf("missing: a SARIF log must say version %q", SupportedVersion)}
	}
	if !sawRuns {
		return &Error{Path: "$.runs", Reason: "missing: a SARIF log must have runs"}
	}
	p.sum.Version = *version
	return nil
}

// skip consumes one value without holding it whole: an array or object is
// walked one level down and each element is decoded into nothing, so the
// decoder's buffer holds one element at a time.
func (p *parser) skip(path string) error {
	t, err := p.token(path)
	if err != nil {
		return err
	}
	d, ok := t.(json.Delim)
	if !ok {
		return nil
	}
	for p.dec.More() {
		if d == '{' {
			if _, err := p.token(path); err != nil {
				return err
			}
		}
		if err := p.dec.Decode(&skipValue{}); err != nil {
			return p.fail(path, err)
		}
	}
	_, err = p.token(path)
	return err
}

// skipValue decodes any JSON value into nothing.
type skipValue struct{}

func (*skipValue) UnmarshalJSON([]byte) error { return nil }

func (p *parser) runs() error {
	t, err := p.token("$.runs")
	if err != nil {
		return err
	}
	if d, ok := t.(json.Delim); !ok || d != '[' {
		return &Error{Path: "$.runs", Reason: "runs must be an array"}
	}
	for i := 0; p.dec.More(); i++ {
		if err := p.run(i); err != nil {
			return err
		}
	}
	_, err = p.token("$.runs")
	return err
}

type runState struct {
	path    string
	tool    *toolInfo
	counts  *events.ToolCounts
	pending backlog
}

func (p *parser) run(i int) error {
	path := "$.runs[" + strconv.Itoa(i) + "]"
	t, err := p.token(path)
	if err != nil {
		return err
	}
	if d, ok := t.(json.Delim); !ok || d != '{' {
		return &Error{Path: path, Reason: "a run must be an object"}
	}
	p.sum.Runs++
	rs := &runState{path: path, pending: backlog{dir: p.spoolDir}}
	defer rs.pending.close()
	for p.dec.More() {
		kt, err := p.token(path)
		if err != nil {
			return err
		}
		key, _ := kt.(string)
		switch key {
		case "tool":
			var rt *rawTool
			if err := p.dec.Decode(&rt); err != nil {
				var ute *json.UnmarshalTypeError
				if !errors.As(err, &ute) {
					return p.fail(path+".tool", err)
				}
				p.anomaly(path+".tool."+ute.Field, fmt.Sprintf("a JSON %s where %s was expected", ute.Value, ute.Type))
			}
			if err := p.setTool(rs, rt); err != nil {
				return err
			}
		case "results":
			if err := p.results(rs); err != nil {
				return err
			}
		default:
			if err := p.skip(path + "." + key); err != nil {
				return err
			}
		}
	}
	if _, err := p.token(path); err != nil {
		return err
	}
	if rs.tool == nil {
		if err := p.setTool(rs, nil); err != nil {
			return err
		}
	}
	return nil
}

func (p *parser) setTool(rs *runState, rt *rawTool) error {
	ti := newToolInfo(rt, func(path, reason string) { p.anomaly(rs.path+".tool"+path, reason) })
	rs.tool = ti
	tool := events.Tool{Name: ti.name, Version: ti.version}
	idx := slices.IndexFunc(p.sum.ByTool, func(c events.ToolCounts) bool { return c.Tool == tool })
	if idx < 0 {
		p.sum.Tools = append(p.sum.Tools, tool)
		p.sum.ByTool = append(p.sum.ByTool, events.ToolCounts{Tool: tool})
		idx = len(p.sum.ByTool) - 1
	}
	rs.counts = &p.sum.ByTool[idx]
	// Results read before the tool: resolve their rules now.
	if err := rs.pending.each(func(pr *pendingResult) error { return p.emit(rs, pr) }); err != nil {
		return err
	}
	rs.pending.close()
	rs.pending = backlog{dir: p.spoolDir}
	if rs.counts != nil {
		rs.counts = &p.sum.ByTool[idx] // emit may not grow ByTool, but stay safe
	}
	return nil
}

func (p *parser) results(rs *runState) error {
	path := rs.path + ".results"
	t, err := p.token(path)
	if err != nil {
		return err
	}
	if t == nil {
		return nil
	}
	if d, ok := t.(json.Delim); !ok || d != '[' {
		return &Error{Path: path, Reason: "results must be an array"}
	}
	for i := 0; p.dec.More(); i++ {
		rpath := path + "[" + strconv.Itoa(i) + "]"
		p.rr.reset()
		rr := &p.rr
		if err := p.dec.Decode(&rr); err != nil {
			var ute *json.UnmarshalTypeError
			if !errors.As(err, &ute) {
				return p.fail(rpath, err)
			}
			field := ute.Field
			if field != "" {
				field = "." + field
			}
			p.anomaly(rpath+field, fmt.Sprintf("a JSON %s where %s was expected", ute.Value, ute.Type))
		}
		if rr == nil {
			p.anomaly(rpath, "a result that is null")
			p.rr.reset()
			rr = &p.rr
		}
		pr := p.pendingOf(rs, rpath, rr)
		if rs.tool == nil {
			if err := rs.pending.push(&pr); err != nil {
				return err
			}
			continue
		}
		if err := p.emit(rs, &pr); err != nil {
			return err
		}
	}
	_, err = p.token(path)
	return err
}
