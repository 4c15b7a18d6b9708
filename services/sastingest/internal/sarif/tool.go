package sarif

import (
	"fmt"
	"strconv"
	"strings"
)

// rawTool is run.tool: the driver and its extensions (CodeQL keeps its
// query packs' rules in extensions).
type rawTool struct {
	Driver     *rawComponent   `json:"driver"`
	Extensions []*rawComponent `json:"extensions"`
}

type rawComponent struct {
	Name            *string    `json:"name"`
	Version         *string    `json:"version"`
	SemanticVersion *string    `json:"semanticVersion"`
	Rules           []*rawRule `json:"rules"`
}

type rawRule struct {
	ID                   string `json:"id"`
	DefaultConfiguration *struct {
		Level string `json:"level"`
	} `json:"defaultConfiguration"`
	Properties    *rawProperties `json:"properties"`
	Relationships []*struct {
		Target *struct {
			ID            string `json:"id"`
			ToolComponent *struct {
				Name string `json:"name"`
			} `json:"toolComponent"`
		} `json:"target"`
	} `json:"relationships"`
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

func newToolInfo(rt *rawTool, anomaly func(path, reason string)) *toolInfo {
	ti := &toolInfo{name: UnknownTool}
	if rt == nil {
		return ti
	}
	if d := rt.Driver; d != nil {
		if d.Name != nil && strings.TrimSpace(*d.Name) != "" {
			ti.name = strings.TrimSpace(*d.Name)
		}
		switch {
		case d.Version != nil && *d.Version != "":
			ti.version = *d.Version
		case d.SemanticVersion != nil:
			ti.version = *d.SemanticVersion
		}
		ti.driver = newComponent(d, ".driver", anomaly)
	}
	for i, e := range rt.Extensions {
		ti.extensions = append(ti.extensions, newComponent(e, ".extensions["+strconv.Itoa(i)+"]", anomaly))
	}
	return ti
}

func newComponent(rc *rawComponent, path string, anomaly func(path, reason string)) component {
	c := component{}
	if rc == nil {
		return c
	}
	if rc.Name != nil {
		c.name = *rc.Name
	}
	c.rules = make([]*ruleInfo, len(rc.Rules))
	c.byID = make(map[string]*ruleInfo, len(rc.Rules))
	for i, r := range rc.Rules {
		if r == nil {
			continue
		}
		rpath := path + ".rules[" + strconv.Itoa(i) + "]"
		ri := &ruleInfo{id: r.ID}
		if dc := r.DefaultConfiguration; dc != nil && dc.Level != "" {
			if validLevel(dc.Level) {
				ri.level = dc.Level
			} else {
				anomaly(rpath+".defaultConfiguration.level", fmt.Sprintf("level %q is not error, warning, note or none", dc.Level))
			}
		}
		if props := r.Properties; props != nil {
			ri.score, ri.hasScore = parseScore(props.SecuritySeverity)
			for j, t := range props.Tags {
				s, ok := t.(string)
				if !ok {
					anomaly(rpath+".properties.tags["+strconv.Itoa(j)+"]", "a tag that is not a string")
					continue
				}
				ri.cwes = appendCWEs(ri.cwes, CWEsFromTags([]string{s}))
				// Tools without security-severity (gosec, for one) name
				// their severity in a tag: HIGH, MEDIUM, LOW.
				if score, ok := tagSeverityScore(s); ok && !ri.hasScore {
					ri.score, ri.hasScore = score, true
				}
			}
			switch v := props.CWE.(type) {
			case string:
				ri.cwes = appendCWEs(ri.cwes, CWEsFromTags([]string{v}))
			case []any:
				for _, e := range v {
					if s, ok := e.(string); ok {
						ri.cwes = appendCWEs(ri.cwes, CWEsFromTags([]string{s}))
					}
				}
			}
		}
		for _, rel := range r.Relationships {
			if rel == nil || rel.Target == nil || rel.Target.ToolComponent == nil {
				continue
			}
			if strings.EqualFold(rel.Target.ToolComponent.Name, "CWE") {
				if cwe := cweFromTaxon(rel.Target.ID); cwe != "" && !contains(ri.cwes, cwe) {
					ri.cwes = append(ri.cwes, cwe)
				}
			}
		}
		c.rules[i] = ri
		if _, dup := c.byID[r.ID]; !dup && r.ID != "" {
			c.byID[r.ID] = ri
		}
	}
	return c
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
