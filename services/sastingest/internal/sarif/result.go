package sarif

import (
	"bytes"
	"slices"
	"strconv"
	"strings"
)

// rawResult holds the fields of a result that normalisation reads, taken
// from the JSON text as the walk passes them; every other field is skipped
// undecoded. Types are loose where real tools are: a field of the wrong
// JSON type is an anomaly, not a rejection. The buffers are reused from
// result to result, so reading a result allocates little more than its
// file name.
type rawResult struct {
	ruleID       string
	ruleIndex    int
	refID        string // rule.id
	refIndex     int    // rule.index
	compName     string // rule.toolComponent.name
	compIndex    int    // rule.toolComponent.index
	level        string
	kind         string
	message      []byte // message.text
	file         string // locations[0].physicalLocation.artifactLocation.uri
	line         int    // locations[0].physicalLocation.region.startLine
	snippet      []byte // locations[0].physicalLocation.region.snippet.text
	partial      []partialEntry
	partialBytes []byte
	props        rawProperties
	scratch      []byte
}

// partialEntry is one partialFingerprints member: key and value as
// offsets into rawResult.partialBytes.
type partialEntry struct{ k0, k1, v0, v1 int }

// reset empties r for the next result, keeping its buffers. It sets each
// field rather than assigning a new rawResult: a results array of a
// million empty objects pays for reset once per element, and the field
// stores cost a fraction of building and copying the whole struct.
func (r *rawResult) reset() {
	r.ruleID, r.ruleIndex = "", -1
	r.refID, r.refIndex = "", -1
	r.compName, r.compIndex = "", -1
	r.level, r.kind = "", ""
	r.message, r.snippet = r.message[:0], r.snippet[:0]
	r.file, r.line = "", 0
	r.partial, r.partialBytes = r.partial[:0], r.partialBytes[:0]
	r.props.tags, r.props.cwe = r.props.tags[:0], nil
	r.props.score, r.props.hasScore = 0, false
	r.scratch = r.scratch[:0]
}

// rawProperties are the property-bag entries that carry severity and CWEs.
type rawProperties struct {
	tags     []string // the string tags kept (see properties)
	cwe      []string // the cwe property: a string or a list of strings
	score    float64  // security-severity
	hasScore bool
}

// result reads one element of a results array into rr. A null or a value
// that is not an object is an anomaly: the result still counts.
func (p *parser) result(rr *rawResult) error {
	switch k := p.dec.PeekKind(); k {
	case '{':
	case 'n':
		if _, err := p.dec.ReadValue(); err != nil {
			return err
		}
		p.anomaly(p.here(), "a result that is null")
		return nil
	default:
		if ok, err := p.beginObject(); !ok || err != nil {
			return err
		}
	}
	if _, err := p.dec.ReadToken(); err != nil {
		return err
	}
	for p.more() {
		name, err := p.name()
		if err != nil {
			return err
		}
		switch {
		case match(name, "ruleId"):
			err = p.interned(&rr.ruleID)
		case match(name, "ruleIndex"):
			err = p.integer(&rr.ruleIndex)
		case match(name, "rule"):
			err = p.ruleRef(rr)
		case match(name, "level"):
			err = p.interned(&rr.level)
		case match(name, "kind"):
			err = p.interned(&rr.kind)
		case match(name, "message"):
			err = p.message(rr)
		case match(name, "locations"):
			err = p.locations(rr)
		case match(name, "partialFingerprints"):
			err = p.partialFingerprints(rr)
		case match(name, "properties"):
			err = p.properties(&rr.props, false)
		default:
			err = p.skip()
		}
		if err != nil {
			return err
		}
	}
	return p.end()
}

// ruleRef reads result.rule: {id, index, toolComponent: {name, index}}.
func (p *parser) ruleRef(rr *rawResult) error {
	return p.members(func(name []byte) (err error) {
		switch {
		case match(name, "id"):
			err = p.interned(&rr.refID)
		case match(name, "index"):
			err = p.integer(&rr.refIndex)
		case match(name, "toolComponent"):
			err = p.toolComponentRef(rr)
		default:
			err = p.skip()
		}
		return err
	})
}

func (p *parser) toolComponentRef(rr *rawResult) error {
	return p.members(func(name []byte) (err error) {
		switch {
		case match(name, "name"):
			err = p.interned(&rr.compName)
		case match(name, "index"):
			err = p.integer(&rr.compIndex)
		default:
			err = p.skip()
		}
		return err
	})
}

// message reads message.text.
func (p *parser) message(rr *rawResult) error {
	return p.members(func(name []byte) (err error) {
		if match(name, "text") {
			rr.message, _, err = p.appendString(rr.message[:0])
		} else {
			err = p.skip()
		}
		return err
	})
}

// locations reads the first location's file, line and snippet; the others
// are checked for malformed fields, as the first is, and dropped.
func (p *parser) locations(rr *rawResult) error {
	if ok, err := p.beginArray(); !ok || err != nil {
		return err
	}
	for i := 0; p.more(); i++ {
		if err := p.location(rr, i == 0); err != nil {
			return err
		}
	}
	return p.end()
}

func (p *parser) location(rr *rawResult, keep bool) error {
	return p.members(func(name []byte) (err error) {
		if match(name, "physicalLocation") {
			err = p.physicalLocation(rr, keep)
		} else {
			err = p.skip()
		}
		return err
	})
}

func (p *parser) physicalLocation(rr *rawResult, keep bool) error {
	return p.members(func(name []byte) (err error) {
		switch {
		case match(name, "artifactLocation"):
			err = p.artifactLocation(rr, keep)
		case match(name, "region"):
			err = p.region(rr, keep)
		default:
			err = p.skip()
		}
		return err
	})
}

func (p *parser) artifactLocation(rr *rawResult, keep bool) error {
	return p.members(func(name []byte) (err error) {
		switch {
		case match(name, "uri") && keep:
			err = p.str(&rr.file)
		case match(name, "uri"), match(name, "uriBaseId"):
			rr.scratch, _, err = p.appendString(rr.scratch[:0])
		default:
			err = p.skip()
		}
		return err
	})
}

func (p *parser) region(rr *rawResult, keep bool) error {
	var n int
	return p.members(func(name []byte) (err error) {
		switch {
		case match(name, "startLine") && keep:
			err = p.integer(&rr.line)
		case match(name, "startLine"), match(name, "startColumn"), match(name, "endLine"), match(name, "endColumn"):
			err = p.integer(&n)
		case match(name, "snippet"):
			err = p.snippet(rr, keep)
		default:
			err = p.skip()
		}
		return err
	})
}

func (p *parser) snippet(rr *rawResult, keep bool) error {
	return p.members(func(name []byte) (err error) {
		switch {
		case match(name, "text") && keep:
			rr.snippet, _, err = p.appendString(rr.snippet[:0])
		case match(name, "text"):
			rr.scratch, _, err = p.appendString(rr.scratch[:0])
		default:
			err = p.skip()
		}
		return err
	})
}

// partialFingerprints reads an object of strings. A value that is not a
// string is an anomaly and counts as "" (as encoding/json left it); a
// repeated key keeps its last value; null empties the set.
func (p *parser) partialFingerprints(rr *rawResult) error {
	if p.dec.PeekKind() == 'n' {
		rr.partial, rr.partialBytes = rr.partial[:0], rr.partialBytes[:0]
	}
	if ok, err := p.beginObject(); !ok || err != nil {
		return err
	}
	for p.more() {
		name, err := p.name()
		if err != nil {
			return err
		}
		k0 := len(rr.partialBytes)
		rr.partialBytes = append(rr.partialBytes, name...)
		k1 := len(rr.partialBytes)
		rr.partialBytes, _, err = p.appendString(rr.partialBytes)
		if err != nil {
			return err
		}
		e := partialEntry{k0: k0, k1: k1, v0: k1, v1: len(rr.partialBytes)}
		key := rr.partialBytes[k0:k1]
		dup := slices.IndexFunc(rr.partial, func(o partialEntry) bool { return bytes.Equal(rr.partialBytes[o.k0:o.k1], key) })
		if dup >= 0 {
			rr.partial[dup] = e
		} else {
			rr.partial = append(rr.partial, e)
		}
	}
	return p.end()
}

// properties reads a property bag's tags, security-severity and cwe. With
// allTags every string tag is kept (a rule's tags name its CWEs and, for
// some tools, its severity); otherwise only tags that mention a CWE are.
// A tag that is not a string is an anomaly.
func (p *parser) properties(props *rawProperties, allTags bool) error {
	return p.members(func(name []byte) (err error) {
		switch {
		case match(name, "tags"):
			props.tags = props.tags[:0]
			err = p.tags(props, allTags)
		case match(name, "security-severity"):
			props.score, props.hasScore, err = p.score()
		case match(name, "cwe"):
			props.cwe, err = p.cweProperty()
		default:
			err = p.skip()
		}
		return err
	})
}

func (p *parser) tags(props *rawProperties, allTags bool) error {
	if ok, err := p.beginArray(); !ok || err != nil {
		return err
	}
	for p.more() {
		if p.dec.PeekKind() != '"' {
			if err := p.skip(); err != nil {
				return err
			}
			p.anomaly(p.here(), "a tag that is not a string")
			continue
		}
		b, _, err := p.appendString(p.strBuf[:0])
		p.strBuf = b[:0]
		if err != nil {
			return err
		}
		if allTags || mentionsCWE(string(b)) {
			props.tags = append(props.tags, p.intern(b))
		}
	}
	return p.end()
}

// score reads a security-severity, which tools write as a string ("8.8")
// or a number; anything else is no score.
func (p *parser) score() (float64, bool, error) {
	switch p.dec.PeekKind() {
	case '"':
		b, _, err := p.appendString(p.strBuf[:0])
		p.strBuf = b[:0]
		if err != nil {
			return 0, false, err
		}
		f, perr := strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
		return f, perr == nil, nil
	case '0':
		v, err := p.dec.ReadValue()
		if err != nil {
			return 0, false, err
		}
		f, perr := strconv.ParseFloat(string(v), 64)
		if perr != nil {
			p.anomaly(p.here(), "a JSON number "+string(v)+" where float64 was expected")
			return 0, false, nil
		}
		return f, true, nil
	}
	return 0, false, p.skip()
}

// cweProperty reads a cwe property: a string or a list of strings (other
// elements are ignored).
func (p *parser) cweProperty() ([]string, error) {
	switch p.dec.PeekKind() {
	case '"':
		var s string
		err := p.str(&s)
		return []string{s}, err
	case '[':
		if _, err := p.dec.ReadToken(); err != nil {
			return nil, err
		}
		var out []string
		for p.more() {
			if p.dec.PeekKind() != '"' {
				if err := p.skip(); err != nil {
					return nil, err
				}
				continue
			}
			var s string
			if err := p.str(&s); err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		return out, p.end()
	}
	return nil, p.skip()
}

// pendingResult is a decoded result waiting for its run's tool (some tools,
// gosec among them, write results before the tool).
type pendingResult struct {
	ruleID    string
	ruleIndex int
	compIndex int
	compName  string
	hasComp   bool
	level     string
	kind      string // folded into level by pendingOf
	score     float64
	hasScore  bool
	cwes      []string
	file      string
	line      int
	fp        Fingerprint
}

func validLevel(l string) bool {
	switch l {
	case LevelError, LevelWarning, LevelNote, LevelNone:
		return true
	}
	return false
}

// pendingOf normalises rr into pr (every field of pr is set).
func (p *parser) pendingOf(path string, index int, rr *rawResult, pr *pendingResult) {
	pr.ruleID, pr.ruleIndex, pr.compIndex, pr.compName, pr.hasComp = rr.ruleID, rr.ruleIndex, -1, "", false
	pr.level, pr.kind = rr.level, rr.kind
	if pr.ruleID == "" {
		pr.ruleID = rr.refID
	}
	if pr.ruleIndex < 0 {
		pr.ruleIndex = rr.refIndex
	}
	if rr.compName != "" || rr.compIndex >= 0 {
		pr.hasComp, pr.compIndex, pr.compName = true, rr.compIndex, rr.compName
	}
	if pr.level != "" && !validLevel(pr.level) {
		p.anomaly(path+"["+strconv.Itoa(index)+"].level", "level "+strconv.Quote(pr.level)+" is not error, warning, note or none")
		pr.level = LevelWarning
	}
	// SARIF §3.27.10: without a level, a result whose kind is not fail
	// has level none.
	if pr.level == "" && pr.kind != "" && pr.kind != "fail" {
		pr.level = LevelNone
	}
	pr.score, pr.hasScore = rr.props.score, rr.props.hasScore
	pr.cwes = propertyCWEs(&rr.props)
	pr.file, pr.line = rr.file, rr.line
	id := pr.ruleID
	if id == "" && pr.ruleIndex >= 0 {
		id = "#" + strconv.Itoa(pr.compIndex) + ":" + strconv.Itoa(pr.ruleIndex)
	}
	pr.fp = rr.fingerprint(id)
}

// propertyCWEs reads CWE ids from tags and a "cwe" property.
func propertyCWEs(props *rawProperties) []string {
	var out []string
	for _, s := range props.tags {
		if mentionsCWE(s) {
			out = appendCWEs(out, CWEsFromTags([]string{s}))
		}
	}
	for _, s := range props.cwe {
		out = appendCWEs(out, CWEsFromTags([]string{s}))
	}
	return out
}

func appendCWEs(list, more []string) []string {
	for _, c := range more {
		if !contains(list, c) {
			list = append(list, c)
		}
	}
	return list
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

func (p *parser) emit(rs *runState, pr *pendingResult) error {
	rule := rs.tool.resolve(pr)
	// Field by field, as reset does: every field is set below.
	f := &p.f
	f.Tool, f.RuleID, f.File, f.Line, f.Fingerprint = rs.tool.name, pr.ruleID, pr.file, pr.line, pr.fp
	if f.RuleID == "" && rule != nil {
		f.RuleID = rule.id
	}
	switch {
	case pr.level != "":
		f.Level = pr.level
	case pr.kind != "" && pr.kind != "fail":
		f.Level = LevelNone
	case rule != nil && rule.level != "":
		f.Level = rule.level
	default:
		f.Level = LevelWarning
	}
	score, has := pr.score, pr.hasScore
	if !has && rule != nil {
		score, has = rule.score, rule.hasScore
	}
	f.Severity = SeverityNone
	if has {
		f.Severity = SeverityOf(score)
	}
	f.CWEs = pr.cwes
	if rule != nil && len(rule.cwes) > 0 {
		if len(f.CWEs) == 0 {
			f.CWEs = rule.cwes
		} else {
			f.CWEs = appendCWEs(f.CWEs, rule.cwes)
		}
	}
	p.boundFinding(rs, f)
	p.sum.ResultsTotal++
	rs.counts.Results++
	countSeverity(&p.sum.BySeverity, f.Severity)
	countSeverity(&rs.counts.BySeverity, f.Severity)
	countLevel(&p.sum.ByLevel, f.Level)
	countLevel(&rs.counts.ByLevel, f.Level)
	if p.fn == nil {
		return nil
	}
	return p.fn(f)
}

// boundFinding cuts a finding's strings and lists to the bounds an event
// can carry (see MaxRuleIDBytes).
func (p *parser) boundFinding(rs *runState, f *Finding) {
	if len(f.RuleID) <= MaxRuleIDBytes && len(f.File) <= MaxFileBytes && len(f.CWEs) <= MaxCWEs {
		return
	}
	path := rs.path + ".results"
	p.boundField(path, "a ruleId", &f.RuleID, MaxRuleIDBytes)
	p.boundField(path, "an artifactLocation.uri", &f.File, MaxFileBytes)
	if len(f.CWEs) > MaxCWEs {
		p.anomaly(path, strconv.Itoa(len(f.CWEs))+" CWEs on one result: the first "+strconv.Itoa(MaxCWEs)+" kept")
		f.CWEs = f.CWEs[:MaxCWEs:MaxCWEs]
	}
}
