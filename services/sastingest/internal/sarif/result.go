package sarif

import (
	"fmt"
	"strconv"
	"strings"
)

// rawResult holds the fields of a result that normalisation reads; the
// decoder skips every other field without allocating it. Types are loose
// where real tools are: a field of the wrong JSON type is an anomaly, not a
// rejection.
//
// Nested objects whose presence does not matter are values, not pointers,
// and indexes are preset to -1 (absent), so decoding a result allocates
// little more than its strings.
type rawResult struct {
	RuleID    string `json:"ruleId"`
	RuleIndex int    `json:"ruleIndex"`
	Rule      struct {
		ID            string `json:"id"`
		Index         int    `json:"index"`
		ToolComponent struct {
			Name  string `json:"name"`
			Index int    `json:"index"`
		} `json:"toolComponent"`
	} `json:"rule"`
	Level   string `json:"level"`
	Kind    string `json:"kind"`
	Message struct {
		Text string `json:"text"`
	} `json:"message"`
	Locations           []rawLocation     `json:"locations"`
	PartialFingerprints map[string]string `json:"partialFingerprints"`
	Properties          *rawProperties    `json:"properties"`
}

// reset empties r for the next result, keeping the partialFingerprints
// map's storage.
func (r *rawResult) reset() {
	m := r.PartialFingerprints
	clear(m)
	*r = rawResult{RuleIndex: -1, PartialFingerprints: m}
	r.Rule.Index = -1
	r.Rule.ToolComponent.Index = -1
}

type rawLocation struct {
	PhysicalLocation struct {
		ArtifactLocation struct {
			URI       string `json:"uri"`
			URIBaseID string `json:"uriBaseId"`
		} `json:"artifactLocation"`
		Region struct {
			StartLine   int `json:"startLine"`
			StartColumn int `json:"startColumn"`
			EndLine     int `json:"endLine"`
			EndColumn   int `json:"endColumn"`
			Snippet     struct {
				Text string `json:"text"`
			} `json:"snippet"`
		} `json:"region"`
	} `json:"physicalLocation"`
}

// rawProperties are the property-bag entries that carry severity and CWEs.
type rawProperties struct {
	Tags             []any `json:"tags"`
	SecuritySeverity any   `json:"security-severity"`
	CWE              any   `json:"cwe"`
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

func (p *parser) pendingOf(rs *runState, path string, rr *rawResult) pendingResult {
	pr := pendingResult{ruleID: rr.RuleID, ruleIndex: rr.RuleIndex, compIndex: -1, level: rr.Level, kind: rr.Kind}
	if pr.ruleID == "" {
		pr.ruleID = rr.Rule.ID
	}
	if pr.ruleIndex < 0 {
		pr.ruleIndex = rr.Rule.Index
	}
	if tc := rr.Rule.ToolComponent; tc.Name != "" || tc.Index >= 0 {
		pr.hasComp, pr.compIndex, pr.compName = true, tc.Index, tc.Name
	}
	if pr.level != "" && !validLevel(pr.level) {
		p.anomaly(path+".level", fmt.Sprintf("level %q is not error, warning, note or none", pr.level))
		pr.level = LevelWarning
	}
	// SARIF §3.27.10: without a level, a result whose kind is not fail
	// has level none.
	if pr.level == "" && pr.kind != "" && pr.kind != "fail" {
		pr.level = LevelNone
	}
	if props := rr.Properties; props != nil {
		pr.score, pr.hasScore = parseScore(props.SecuritySeverity)
		pr.cwes = p.propertyCWEs(path+".properties", props)
	}
	var snippet string
	if len(rr.Locations) > 0 {
		pl := &rr.Locations[0].PhysicalLocation
		pr.file = pl.ArtifactLocation.URI
		pr.line = pl.Region.StartLine
		snippet = pl.Region.Snippet.Text
	}
	id := pr.ruleID
	if id == "" && pr.ruleIndex >= 0 {
		id = "#" + strconv.Itoa(pr.compIndex) + ":" + strconv.Itoa(pr.ruleIndex)
	}
	pr.fp = fingerprint(id, rr.PartialFingerprints, pr.file, pr.line, snippet, rr.Message.Text)
	return pr
}

// propertyCWEs reads CWE ids from tags and a "cwe" property (a string or a
// list), recording tags that are not strings as anomalies.
func (p *parser) propertyCWEs(path string, props *rawProperties) []string {
	var out []string
	for i, t := range props.Tags {
		s, ok := t.(string)
		if !ok {
			p.anomaly(path+".tags["+strconv.Itoa(i)+"]", "a tag that is not a string")
			continue
		}
		if strings.Contains(strings.ToLower(s), "cwe") {
			out = appendCWEs(out, CWEsFromTags([]string{s}))
		}
	}
	switch v := props.CWE.(type) {
	case string:
		out = appendCWEs(out, CWEsFromTags([]string{v}))
	case []any:
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = appendCWEs(out, CWEsFromTags([]string{s}))
			}
		}
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
	f := &p.f
	*f = Finding{Tool: rs.tool.name, RuleID: pr.ruleID, File: pr.file, Line: pr.line, Fingerprint: pr.fp}
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
