package sarif

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"

	"github.com/go-json-experiment/json/jsontext"

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
	er := &errReader{r: r}
	br := bufio.NewReaderSize(er, 64<<10)
	if b, err := br.Peek(3); err == nil && string(b) == "\xef\xbb\xbf" {
		_, _ = br.Discard(3)
	}
	p := &parser{src: er, dec: jsontext.NewDecoder(&spaceReader{r: br}, decoderOptions...), fn: fn, sum: &Summary{}}
	for _, o := range opts {
		o(p)
	}
	if err := p.log(); err != nil {
		if er.err != nil {
			return nil, er.err
		}
		return nil, err
	}
	return p.sum, nil
}

type parser struct {
	spoolDir string
	src      *errReader
	dec      *jsontext.Decoder
	fn       func(*Finding) error
	sum      *Summary
	f        Finding
	rr       rawResult
	pr       pendingResult

	// where names the element being read, for errors: errAt, and
	// [errIndex] when errIndex >= 0.
	errAt    string
	errIndex int

	nameBuf, strBuf []byte
	strings         map[string]string
	// peekFailed is set when more met a decoder error instead of the
	// next member.
	peekFailed bool
}

// at sets the element that a decoder error is reported at.
func (p *parser) at(path string) { p.errAt, p.errIndex = path, -1 }

// fail turns a decoder error into what Parse returns, naming the element
// being read.
func (p *parser) fail(err error) error {
	if err == nil {
		return nil
	}
	if p.src.err != nil {
		return p.src.err
	}
	var serr *Error
	if errors.As(err, &serr) {
		return err
	}
	path := clipText(p.errAt)
	if p.errIndex >= 0 {
		path += "[" + strconv.Itoa(p.errIndex) + "]"
	}
	var syn *jsontext.SyntacticError
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return &Error{Path: path, Reason: "unexpected end of JSON: the document is truncated"}
	case errors.As(err, &syn):
		return &Error{Path: path, Reason: clipText(fmt.Sprintf("not valid JSON at byte %d: %v", syn.ByteOffset, syn))}
	}
	return err
}

func (p *parser) anomaly(path, reason string) {
	p.sum.Anomalies++
	if len(p.sum.AnomalyList) < MaxAnomalies {
		p.sum.AnomalyList = append(p.sum.AnomalyList, Anomaly{Path: clipText(path), Reason: clipText(reason)})
	}
}

func (p *parser) log() error {
	p.at("$")
	t, err := p.dec.ReadToken()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return &Error{Path: "$", Reason: "empty body: not a SARIF log"}
		}
		var syn *jsontext.SyntacticError
		if p.src.err == nil && errors.As(err, &syn) && !errors.Is(err, io.ErrUnexpectedEOF) {
			return &Error{Path: "$", Reason: fmt.Sprintf("not JSON: %v", syn)}
		}
		return p.fail(err)
	}
	if t.Kind() != '{' {
		return &Error{Path: "$", Reason: "not a SARIF log: the document is not a JSON object"}
	}
	var version *string
	sawRuns := false
	for p.more() {
		p.at("$")
		name, err := p.name()
		if err != nil {
			return p.fail(err)
		}
		switch {
		case string(name) == "version":
			p.at("$.version")
			v, err := p.dec.ReadValue()
			if err != nil {
				return p.fail(err)
			}
			if v.Kind() != '"' {
				return &Error{Path: "$.version", Reason: fmt.Sprintf("version must be the string %q", SupportedVersion)}
			}
			b, _ := jsontext.AppendUnquote(nil, v)
			s := string(b)
			if s != SupportedVersion {
				return &Error{Path: "$.version", Reason: fmt.Sprintf("SARIF version %q is not supported: only %s is", s, SupportedVersion)}
			}
			version = &s
		case string(name) == "runs":
			sawRuns = true
			if err := p.runs(); err != nil {
				return err
			}
		default:
			p.at("$." + string(name))
			if err := p.skipLarge(); err != nil {
				return p.fail(err)
			}
		}
	}
	p.at("$")
	if err := p.end(); err != nil { // closing '}'
		return p.fail(err)
	}
	if _, err := p.dec.ReadToken(); !errors.Is(err, io.EOF) {
		if p.src.err != nil {
			return p.src.err
		}
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

func (p *parser) runs() error {
	p.at("$.runs")
	if k := p.dec.PeekKind(); k != '[' {
		if k == jsontext.KindInvalid {
			_, err := p.dec.ReadToken()
			return p.fail(err)
		}
		return &Error{Path: "$.runs", Reason: "runs must be an array"}
	}
	if _, err := p.dec.ReadToken(); err != nil {
		return p.fail(err)
	}
	i := 0
	for ; p.more(); i++ {
		if err := p.run(i); err != nil {
			return err
		}
		p.at("$.runs")
	}
	if p.peekFailed {
		// Not the end of the array: the next run is broken.
		p.at("$.runs[" + strconv.Itoa(i) + "]")
	}
	return p.fail(p.end())
}

type runState struct {
	path    string
	tool    *toolInfo
	counts  *events.ToolCounts
	pending backlog
}

func (p *parser) run(i int) error {
	path := "$.runs[" + strconv.Itoa(i) + "]"
	p.at(path)
	if k := p.dec.PeekKind(); k != '{' {
		if k == jsontext.KindInvalid {
			_, err := p.dec.ReadToken()
			return p.fail(err)
		}
		return &Error{Path: path, Reason: "a run must be an object"}
	}
	if _, err := p.dec.ReadToken(); err != nil {
		return p.fail(err)
	}
	p.sum.Runs++
	rs := &runState{path: path, pending: backlog{dir: p.spoolDir}}
	defer rs.pending.close()
	for p.more() {
		p.at(path)
		name, err := p.name()
		if err != nil {
			return p.fail(err)
		}
		switch {
		case string(name) == "tool":
			p.at(path + ".tool")
			rt, err := p.tool()
			if err != nil {
				return p.fail(err)
			}
			if err := p.setTool(rs, rt); err != nil {
				return err
			}
		case string(name) == "results":
			if err := p.results(rs); err != nil {
				return err
			}
		default:
			p.at(path + "." + string(name))
			if err := p.skipLarge(); err != nil {
				return p.fail(err)
			}
		}
	}
	p.at(path)
	if err := p.end(); err != nil {
		return p.fail(err)
	}
	if rs.tool == nil {
		if err := p.setTool(rs, nil); err != nil {
			return err
		}
	}
	return nil
}

func (p *parser) setTool(rs *runState, rt *rawTool) error {
	ti := newToolInfo(rt)
	p.boundField(rs.path+".tool.driver.name", "a tool name", &ti.name, MaxToolNameBytes)
	p.boundField(rs.path+".tool.driver.version", "a tool version", &ti.version, MaxToolVersionBytes)
	rs.tool = ti
	tool := events.Tool{Name: ti.name, Version: ti.version}
	idx := slices.IndexFunc(p.sum.ByTool, func(c events.ToolCounts) bool { return c.Tool == tool })
	if idx < 0 && len(p.sum.ByTool) >= MaxTools {
		p.anomaly(rs.path+".tool", "more than "+strconv.Itoa(MaxTools)+" tools: counted under "+strconv.Quote(OtherTools))
		tool = events.Tool{Name: OtherTools}
		idx = slices.IndexFunc(p.sum.ByTool, func(c events.ToolCounts) bool { return c.Tool == tool })
	}
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
	return nil
}

func (p *parser) results(rs *runState) error {
	path := rs.path + ".results"
	p.at(path)
	switch k := p.dec.PeekKind(); k {
	case 'n':
		_, err := p.dec.ReadValue()
		return p.fail(err)
	case '[':
	case jsontext.KindInvalid:
		_, err := p.dec.ReadToken()
		return p.fail(err)
	default:
		return &Error{Path: path, Reason: "results must be an array"}
	}
	if _, err := p.dec.ReadToken(); err != nil {
		return p.fail(err)
	}
	i := 0
	for ; p.more(); i++ {
		p.errAt, p.errIndex = path, i
		rr := &p.rr
		rr.reset()
		if err := p.result(rr); err != nil {
			return p.fail(err)
		}
		pr := &p.pr
		p.pendingOf(path, i, rr, pr)
		if rs.tool == nil {
			if err := rs.pending.push(pr); err != nil {
				return err
			}
			continue
		}
		if err := p.emit(rs, pr); err != nil {
			return err
		}
	}
	p.at(path)
	if p.peekFailed {
		// Not the end of the array: the next result is broken.
		p.errIndex = i
	}
	return p.fail(p.end())
}
