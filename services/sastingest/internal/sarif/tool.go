package sarif

import (
	"strconv"
	"strings"
)

// rawTool is run.tool: the driver and its extensions (CodeQL keeps its
// query packs' rules in extensions).
type rawTool struct {
	driver     *rawComponent
	extensions []*rawComponent // nil for a null element
}

type rawComponent struct {
	name            *string
	version         *string
	semanticVersion *string
	rules           []*rawRule // nil for a null element
}

type rawRule struct {
	id            string
	level         string // defaultConfiguration.level, when valid
	props         rawProperties
	relationships []rawRelationship
}

// rawRelationship is a rule's relationship whose target names its tool
// component (gosec points at the CWE taxonomy).
type rawRelationship struct {
	targetID string
	compName string
}

type ruleInfo struct {
	id       string
	level    string
	score    float64
	hasScore bool
	cwes     []string
}

type component struct {
	name  string
	rules []*ruleInfo
	byID  map[string]*ruleInfo
}

type toolInfo struct {
	name, version string
	driver        component
	extensions    []component
}

// UnknownTool names the tool of a run that does not name one.
const UnknownTool = "unknown"

func newToolInfo(rt *rawTool) *toolInfo {
	ti := &toolInfo{name: UnknownTool}
	if rt == nil {
		return ti
	}
	if d := rt.driver; d != nil {
		if d.name != nil && strings.TrimSpace(*d.name) != "" {
			ti.name = strings.TrimSpace(*d.name)
		}
		switch {
		case d.version != nil && *d.version != "":
			ti.version = *d.version
		case d.semanticVersion != nil:
			ti.version = *d.semanticVersion
		}
		ti.driver = newComponent(d)
	}
	for _, e := range rt.extensions {
		ti.extensions = append(ti.extensions, newComponent(e))
	}
	return ti
}

func newComponent(rc *rawComponent) component {
	c := component{}
	if rc == nil {
		return c
	}
	if rc.name != nil {
		c.name = *rc.name
	}
	c.rules = make([]*ruleInfo, len(rc.rules))
	c.byID = make(map[string]*ruleInfo, len(rc.rules))
	for i, r := range rc.rules {
		if r == nil {
			continue
		}
		ri := &ruleInfo{id: r.id, level: r.level, score: r.props.score, hasScore: r.props.hasScore}
		for _, s := range r.props.tags {
			ri.cwes = appendCWEs(ri.cwes, CWEsFromTags([]string{s}))
			// Tools without security-severity (gosec, for one) name
			// their severity in a tag: HIGH, MEDIUM, LOW.
			if score, ok := tagSeverityScore(s); ok && !ri.hasScore {
				ri.score, ri.hasScore = score, true
			}
		}
		for _, s := range r.props.cwe {
			ri.cwes = appendCWEs(ri.cwes, CWEsFromTags([]string{s}))
		}
		for _, rel := range r.relationships {
			if strings.EqualFold(rel.compName, "CWE") {
				if cwe := cweFromTaxon(rel.targetID); cwe != "" && !contains(ri.cwes, cwe) {
					ri.cwes = append(ri.cwes, cwe)
				}
			}
		}
		c.rules[i] = ri
		if _, dup := c.byID[r.id]; !dup && r.id != "" {
			c.byID[r.id] = ri
		}
	}
	return c
}

// tool reads run.tool (nil for null; a malformed tool is an anomaly and an
// empty tool).
func (p *parser) tool() (*rawTool, error) {
	if p.dec.PeekKind() == 'n' {
		_, err := p.dec.ReadValue()
		return nil, err
	}
	rt := &rawTool{}
	err := p.members(func(name []byte) (err error) {
		switch {
		case match(name, "driver"):
			rt.driver, err = p.component()
		case match(name, "extensions"):
			rt.extensions = rt.extensions[:0]
			err = p.elements(func() error {
				c, err := p.component()
				rt.extensions = append(rt.extensions, c)
				return err
			})
		default:
			err = p.skipLarge()
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return rt, nil
}

// component reads a tool component: its name, version and rules; the rest
// (notifications, taxa, help texts) is skipped.
func (p *parser) component() (*rawComponent, error) {
	if p.dec.PeekKind() == 'n' {
		_, err := p.dec.ReadValue()
		return nil, err
	}
	c := &rawComponent{}
	err := p.members(func(name []byte) (err error) {
		switch {
		case match(name, "name"):
			err = p.strPtr(&c.name)
		case match(name, "version"):
			err = p.strPtr(&c.version)
		case match(name, "semanticVersion"):
			err = p.strPtr(&c.semanticVersion)
		case match(name, "rules"):
			c.rules = c.rules[:0]
			err = p.elements(func() error {
				r, err := p.rule()
				c.rules = append(c.rules, r)
				return err
			})
		default:
			err = p.skipLarge()
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (p *parser) rule() (*rawRule, error) {
	if p.dec.PeekKind() == 'n' {
		_, err := p.dec.ReadValue()
		return nil, err
	}
	r := &rawRule{}
	err := p.members(func(name []byte) (err error) {
		switch {
		case match(name, "id"):
			err = p.interned(&r.id)
		case match(name, "defaultConfiguration"):
			err = p.defaultConfiguration(r)
		case match(name, "properties"):
			r.props = rawProperties{}
			err = p.properties(&r.props, true)
		case match(name, "relationships"):
			err = p.relationships(r)
		default:
			err = p.skip()
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

func (p *parser) defaultConfiguration(r *rawRule) error {
	return p.members(func(name []byte) error {
		if !match(name, "level") {
			return p.skip()
		}
		var level string
		if err := p.interned(&level); err != nil {
			return err
		}
		switch {
		case level == "":
		case validLevel(level):
			r.level = level
		default:
			r.level = ""
			p.anomaly(p.here(), "level "+strconv.Quote(level)+" is not error, warning, note or none")
		}
		return nil
	})
}

// relationships keeps the targets that name their tool component.
func (p *parser) relationships(r *rawRule) error {
	r.relationships = r.relationships[:0]
	if ok, err := p.beginArray(); !ok || err != nil {
		return err
	}
	for p.more() {
		var rel rawRelationship
		hasComp := false
		if ok, err := p.beginObject(); err != nil {
			return err
		} else if !ok {
			continue
		}
		for p.more() {
			name, err := p.name()
			if err != nil {
				return err
			}
			if !match(name, "target") {
				if err := p.skip(); err != nil {
					return err
				}
				continue
			}
			rel, hasComp = rawRelationship{}, false
			if ok, err := p.beginObject(); err != nil {
				return err
			} else if !ok {
				continue
			}
			for p.more() {
				name, err := p.name()
				if err != nil {
					return err
				}
				switch {
				case match(name, "id"):
					err = p.str(&rel.targetID)
				case match(name, "toolComponent"):
					var ok bool
					if ok, err = p.beginObject(); !ok || err != nil {
						break
					}
					hasComp = true
					for p.more() {
						var n []byte
						if n, err = p.name(); err != nil {
							return err
						}
						if match(n, "name") {
							err = p.str(&rel.compName)
						} else {
							err = p.skip()
						}
						if err != nil {
							return err
						}
					}
					err = p.end()
				default:
					err = p.skip()
				}
				if err != nil {
					return err
				}
			}
			if err := p.end(); err != nil {
				return err
			}
		}
		if err := p.end(); err != nil {
			return err
		}
		if hasComp {
			r.relationships = append(r.relationships, rel)
		}
	}
	return p.end()
}

// resolve finds the rule a result points at: through rule.toolComponent to
// an extension, then by index, then by id (and by the id's part before a
// "/", SARIF's hierarchical rule ids), in the driver and then the
// extensions.
func (t *toolInfo) resolve(pr *pendingResult) *ruleInfo {
	comp := &t.driver
	if pr.hasComp {
		switch {
		case pr.compIndex >= 0 && pr.compIndex < len(t.extensions):
			comp = &t.extensions[pr.compIndex]
		case pr.compName != "":
			for i := range t.extensions {
				if t.extensions[i].name == pr.compName {
					comp = &t.extensions[i]
					break
				}
			}
		}
	}
	if pr.ruleIndex >= 0 && pr.ruleIndex < len(comp.rules) && comp.rules[pr.ruleIndex] != nil {
		return comp.rules[pr.ruleIndex]
	}
	if pr.ruleID == "" {
		return nil
	}
	if r := comp.lookup(pr.ruleID); r != nil {
		return r
	}
	if r := t.driver.lookup(pr.ruleID); r != nil {
		return r
	}
	for i := range t.extensions {
		if r := t.extensions[i].lookup(pr.ruleID); r != nil {
			return r
		}
	}
	return nil
}

func (c *component) lookup(id string) *ruleInfo {
	if r, ok := c.byID[id]; ok {
		return r
	}
	if i := strings.IndexByte(id, '/'); i > 0 {
		if r, ok := c.byID[id[:i]]; ok {
			return r
		}
	}
	return nil
}
