package model

import (
	"slices"
)

// viewCache keeps, between two events, the views of a namespace's
// applications and certificates, so an event re-derives only the
// applications whose facts it changed (in a namespace of dozens of
// applications, one). It lives with the State in memory and is never
// stored; a State read back has none, and its first event derives
// everything.
//
// An application's view is a pure function of the rules, the snapshots it
// ran on, its uploads and the namespace's certificates (the Secrets its
// workloads mount), so merge and prune mark an application dirty whenever
// one of those changes, and a certificate change marks every one.
type viewCache struct {
	rules Rules
	apps  map[string]*AppView
	dirty map[string]bool
	all   bool // every application is dirty
	certs []CertView
	// certsOK is false when the certificates changed since certs.
	certsOK bool
}

// touch marks app dirty.
func (st *State) touch(app string) {
	if c := st.cache; c != nil && !c.all {
		c.dirty[app] = true
	}
}

// touchSnapshot marks dirty every application that ran on s.
func (st *State) touchSnapshot(s *Snapshot) {
	for _, w := range s.Workloads {
		st.touch(w.App)
	}
}

// touchCerts marks the certificates and, through the Secrets they mount,
// every application dirty.
func (st *State) touchCerts() {
	if c := st.cache; c != nil {
		c.all, c.certsOK = true, false
		clear(c.dirty)
	}
}

// derive is Derive, re-deriving only what changed since the last call.
// The views it returns share their applications' parts with the cache:
// they are read-only.
func (st *State) derive(r Rules) View {
	c := st.cache
	if c == nil || !c.rules.equal(r) {
		c = &viewCache{rules: r.clone(), apps: map[string]*AppView{}, dirty: map[string]bool{}, all: true}
		st.cache = c
	}
	if !c.certsOK {
		c.certs = certViews(r, st)
		c.certsOK = true
	}
	names := appNames(st)
	if len(c.apps) > len(names) {
		for app := range c.apps {
			if _, found := slices.BinarySearch(names, app); !found {
				delete(c.apps, app)
			}
		}
	}
	views := make([]*AppView, len(names))
	for i, app := range names {
		av := c.apps[app]
		if av == nil || c.all || c.dirty[app] {
			d := deriveApp(r, st, app)
			av = &d
			c.apps[app] = av
		}
		views[i] = av
	}
	c.all = false
	clear(c.dirty)
	return assemble(st.Namespace, views, c.certs)
}

func (r Rules) equal(o Rules) bool {
	return r.Threshold == o.Threshold && r.UnknownIsClean == o.UnknownIsClean && r.KeepKnownGood == o.KeepKnownGood &&
		slices.Equal(r.SecretCWEs, o.SecretCWEs) && slices.Equal(r.SecretRules, o.SecretRules) && slices.Equal(r.SecretTags, o.SecretTags) &&
		r.RotationThreshold == o.RotationThreshold && r.RenewalMargin == o.RenewalMargin && r.History == o.History
}

func (r Rules) clone() Rules {
	r.SecretCWEs, r.SecretRules, r.SecretTags = slices.Clone(r.SecretCWEs), slices.Clone(r.SecretRules), slices.Clone(r.SecretTags)
	return r
}
