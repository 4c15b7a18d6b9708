package model

import (
	"slices"
)

// factIndex finds, per application and per PVC, the facts a derivation
// reads — the application's uploads, the observations of a PVC or naming
// the application, the certificates whose users could name it — so that
// re-deriving one application costs what its own facts cost, not what the
// namespace's do (at 1,000 applications in one namespace, sorting and
// scanning every certificate for every application derived was four
// fifths of the correlator's time). It lives in the viewCache, in memory
// only; every lookup has the same answer without it (a scan of the facts),
// which a State without a cache uses.
type factIndex struct {
	uploads  map[string]map[string]*Upload // by app, by upload id
	obsByPVC map[string][]*Observation
	obsByApp map[string][]*Observation // naming the app in workloads or secrets
	// certUsers indexes the certificates by the workload names and pods
	// their users name, as of certsVersion.
	certsVersion uint64
	certsBuilt   bool
	byWorkload   map[string][]string
	byPod        map[string][]string
}

func newFactIndex(st *State) *factIndex {
	x := &factIndex{uploads: map[string]map[string]*Upload{}, obsByPVC: map[string][]*Observation{}, obsByApp: map[string][]*Observation{}}
	for _, u := range st.Uploads {
		x.addUpload(u)
	}
	for _, o := range st.Observations {
		x.addObservation(o)
	}
	return x
}

func (x *factIndex) addUpload(u *Upload) {
	m := x.uploads[u.App]
	if m == nil {
		m = map[string]*Upload{}
		x.uploads[u.App] = m
	}
	m[u.ID] = u
}

func (x *factIndex) removeUpload(u *Upload) {
	if m := x.uploads[u.App]; m[u.ID] == u {
		delete(m, u.ID)
		if len(m) == 0 {
			delete(x.uploads, u.App)
		}
	}
}

func (x *factIndex) addObservation(o *Observation) {
	x.obsByPVC[o.PVC] = append(x.obsByPVC[o.PVC], o)
	for _, app := range appsOfObservation(o) {
		x.obsByApp[app] = append(x.obsByApp[app], o)
	}
}

func (x *factIndex) removeObservation(o *Observation) {
	drop := func(list []*Observation) []*Observation {
		return slices.DeleteFunc(list, func(e *Observation) bool { return e == o })
	}
	if list := drop(x.obsByPVC[o.PVC]); len(list) > 0 {
		x.obsByPVC[o.PVC] = list
	} else {
		delete(x.obsByPVC, o.PVC)
	}
	for _, app := range appsOfObservation(o) {
		if list := drop(x.obsByApp[app]); len(list) > 0 {
			x.obsByApp[app] = list
		} else {
			delete(x.obsByApp, app)
		}
	}
}

// appsOfObservation are the applications an observation names: by its
// workloads and by the Secrets their pods mount.
func appsOfObservation(o *Observation) []string {
	var apps []string
	for _, w := range o.Workloads {
		apps, _ = setAdd(apps, w.App)
	}
	for app := range o.Secrets {
		apps, _ = setAdd(apps, app)
	}
	return apps
}

// index is the state's fact index, nil without a view cache.
func (st *State) index() *factIndex {
	if st.cache == nil {
		return nil
	}
	return st.cache.idx
}

// uploadsOf are app's uploads (in no particular order).
func (st *State) uploadsOf(app string) []*Upload {
	var out []*Upload
	if x := st.index(); x != nil {
		for _, u := range x.uploads[app] {
			out = append(out, u)
		}
		return out
	}
	for _, u := range st.Uploads {
		if u.App == app {
			out = append(out, u)
		}
	}
	return out
}

// observationsOn are the observations of pvc (in no particular order).
func (st *State) observationsOn(pvc string) []*Observation {
	if x := st.index(); x != nil {
		return x.obsByPVC[pvc]
	}
	var out []*Observation
	for _, o := range st.Observations {
		if o.PVC == pvc {
			out = append(out, o)
		}
	}
	return out
}

// observationsNaming are the observations that name app in their workloads
// or Secrets (in no particular order).
func (st *State) observationsNaming(app string) []*Observation {
	if x := st.index(); x != nil {
		return x.obsByApp[app]
	}
	var out []*Observation
	for _, o := range st.Observations {
		if slices.Contains(appsOfObservation(o), app) {
			out = append(out, o)
		}
	}
	return out
}

// addCert indexes the certificate of Secret name by its users.
func (x *factIndex) addCert(name string, c *Cert) {
	for _, w := range c.Users.Workloads {
		x.byWorkload[w.Name], _ = setAdd(x.byWorkload[w.Name], name)
	}
	for _, p := range c.Users.Pods {
		x.byPod[p], _ = setAdd(x.byPod[p], name)
	}
}

// certChanged follows a change of the certificate of secret (st's
// certsVersion counted it already): a certificate's users only grow, so
// an index up to date before the change needs only its users added, not
// a rebuild over the namespace's certificates.
func (x *factIndex) certChanged(st *State, secret string) {
	if x == nil || !x.certsBuilt || x.certsVersion+1 != st.certsVersion {
		return
	}
	if c := st.Certs[secret]; c != nil {
		x.addCert(secret, c)
	}
	x.certsVersion = st.certsVersion
}

// certsNaming are, sorted, the certificates whose users may name app: a
// workload named like app or like one of its owners, or one of its pods
// (usedBy decides). Without an index, every certificate.
func (st *State) certsNaming(app string, owners map[WorkloadRef]bool, pods map[string]bool) []string {
	x := st.index()
	if x == nil {
		out := make([]string, 0, len(st.Certs))
		for name := range st.Certs {
			out = append(out, name)
		}
		slices.Sort(out)
		return out
	}
	if !x.certsBuilt || x.certsVersion != st.certsVersion {
		x.byWorkload, x.byPod = map[string][]string{}, map[string][]string{}
		for name, c := range st.Certs {
			x.addCert(name, c)
		}
		x.certsVersion, x.certsBuilt = st.certsVersion, true
	}
	var out []string
	add := func(names []string) {
		for _, n := range names {
			out, _ = setAdd(out, n)
		}
	}
	add(x.byWorkload[app])
	for o := range owners {
		add(x.byWorkload[o.Name])
	}
	for p := range pods {
		add(x.byPod[p])
	}
	return out
}
