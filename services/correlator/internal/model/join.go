package model

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/stateguard/stateguard/pkg/events"
)

// An upload sent the way GitHub's own uploaders send it (codeql github
// upload-results, the upload-sarif action) names a repository and a commit,
// not an application. The rules below join it to the applications that run
// the repository's code, or keep it as "not joined" with the reason until
// a workload that names the repository appears.

// Where a repository's application was learnt (RepoTarget.Source).
const (
	SourceRules       = "rules"                      // the rules file's repositories map
	SourceAnnotation  = events.AnnotationRepository  // stateguard.io/repository on the pod
	SourceImageSource = events.AnnotationImageSource // org.opencontainers.image.source on the pod
)

// RepoTarget is an application that runs a repository's code.
type RepoTarget struct {
	Namespace string `json:"namespace"`
	App       string `json:"app"`
	// Category, when set, limits the target to uploads of this SARIF
	// category (compared without case).
	Category string `json:"category,omitempty"`
	Source   string `json:"source"`
}

// Key identifies the target in a set: one per namespace, app and category.
func (t RepoTarget) Key() string {
	return t.Namespace + "/" + t.App + "\x00" + strings.ToLower(t.Category)
}

// Join keys of an upload that names no application (Input.Join).
type JoinKeys struct {
	Repository string `json:"repository"`
	Category   string `json:"category,omitempty"`
	// Namespace, when the uploader gave one, limits the targets to it.
	Namespace string `json:"namespace,omitempty"`
}

// Join states of an upload (UploadJoin.State).
const (
	JoinJoined    = "joined"
	JoinNotJoined = "not joined"
)

// UploadJoin is the correlator's record of an upload that named no
// application: joined to Targets, or not joined for Reason. Upload is the
// fact to apply to each target's namespace (its App set there).
type UploadJoin struct {
	UploadID string       `json:"upload_id"`
	Keys     JoinKeys     `json:"keys"`
	State    string       `json:"state"`
	Reason   string       `json:"reason,omitempty"`
	Targets  []RepoTarget `json:"targets,omitempty"`
	Upload   *Upload      `json:"upload"`
}

// NormaliseRepository turns the ways a repository is written (owner/name,
// https://github.com/owner/name.git, git@github.com:owner/name, with or
// without a trailing slash) into owner/name in lower case, as GitHub
// compares them; "" when s names none.
func NormaliseRepository(s string) string {
	s = strings.TrimSpace(s)
	if scheme, rest, ok := strings.Cut(s, "://"); ok && scheme != "" {
		_, path, _ := strings.Cut(rest, "/") // drop the host
		s = path
	} else if user, rest, ok := strings.Cut(s, "@"); ok && user != "" && strings.Contains(rest, ":") {
		_, s, _ = strings.Cut(rest, ":") // scp-like git@host:owner/name
	}
	s = strings.Trim(s, "/")
	s = strings.TrimSuffix(s, ".git")
	if strings.Count(s, "/") < 1 || strings.ContainsAny(s, " \t?#") {
		return ""
	}
	return strings.ToLower(s)
}

// RepositoryOf is the repository a pod's code comes from: its
// stateguard.io/repository annotation, else the OCI image source, and
// where that came from ("" when the pod names none).
func RepositoryOf(annotations map[string]string) (repo, source string) {
	if r := NormaliseRepository(annotations[events.AnnotationRepository]); r != "" {
		return r, SourceAnnotation
	}
	if r := NormaliseRepository(annotations[events.AnnotationImageSource]); r != "" {
		return r, SourceImageSource
	}
	return "", ""
}

// CommitOf is the commit a pod's version was built from: its
// stateguard.io/commit annotation, else the OCI image revision, in lower
// case; "" when neither is a hexadecimal SHA.
func CommitOf(annotations map[string]string) string {
	for _, k := range []string{events.AnnotationCommit, events.AnnotationImageRevision} {
		if c := strings.ToLower(strings.TrimSpace(annotations[k])); isCommit(c) {
			return c
		}
	}
	return ""
}

// isCommit reports whether s looks like a git commit SHA (7 to 64 hex
// digits).
func isCommit(s string) bool {
	if len(s) < 7 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if (s[i] < '0' || s[i] > '9') && (s[i] < 'a' || s[i] > 'f') {
			return false
		}
	}
	return true
}

// commitKeys are the version keys of a workload's commit: its commit
// annotation, and its app.kubernetes.io/version label when that is a SHA —
// the key an upload's commit_sha carries ("commit:<sha>").
func commitKeys(w Workload) []string {
	var out []string
	if w.Commit != "" {
		out = append(out, "commit:"+w.Commit)
	}
	if l := strings.ToLower(w.Label); isCommit(l) && l != w.Commit {
		out = append(out, "commit:"+l)
	}
	return out
}

// ObservedTargets is the join rule for workloads: every app of an
// observation whose pods name a repository (annotation or OCI image
// source) is a target of that repository's uploads, limited to the pods'
// stateguard.io/sarif-category when they set one. Sorted, one per key.
func ObservedTargets(namespace string, pods []events.ObservedPod) map[string][]RepoTarget {
	out := map[string][]RepoTarget{}
	for _, p := range pods {
		repo, source := RepositoryOf(p.Annotations)
		if repo == "" {
			continue
		}
		app := AppOf(events.VolumeWorkload{Pod: p.Pod, Owner: p.Owner, App: p.App})
		t := RepoTarget{Namespace: namespace, App: app, Category: strings.TrimSpace(p.Annotations[events.AnnotationSARIFCategory]), Source: source}
		if !slices.ContainsFunc(out[repo], func(o RepoTarget) bool { return o.Key() == t.Key() }) {
			out[repo] = append(out[repo], t)
		}
	}
	for _, ts := range out {
		slices.SortFunc(ts, compareTargets)
	}
	return out
}

func compareTargets(a, b RepoTarget) int {
	return cmp.Or(strings.Compare(a.Key(), b.Key()), strings.Compare(a.Source, b.Source))
}

// JoinTargets is the join rule for an upload that names no application:
// the rules file's entries for its repository when there are any (the
// operator's word wins), else the applications seen running the
// repository's code. A target with a category takes only uploads of that
// category; an upload that names a namespace joins only there. No target:
// the upload is not joined, and reason says why.
func JoinTargets(r Rules, keys JoinKeys, seen []RepoTarget) (targets []RepoTarget, reason string) {
	repo := NormaliseRepository(keys.Repository)
	candidates, from := r.Repositories[repo], "the rules file's repositories"
	if len(candidates) == 0 {
		candidates, from = seen, "running workloads"
	}
	for _, t := range candidates {
		if t.Category != "" && !strings.EqualFold(t.Category, keys.Category) {
			continue
		}
		if keys.Namespace != "" && t.Namespace != keys.Namespace {
			continue
		}
		targets = append(targets, t)
	}
	slices.SortFunc(targets, compareTargets)
	targets = slices.CompactFunc(targets, func(a, b RepoTarget) bool { return a.Key() == b.Key() })
	switch {
	case len(targets) > 0:
		return targets, ""
	case len(candidates) == 0:
		return nil, fmt.Sprintf("no application runs repository %s: no workload names it (annotation %s or %s) and the rules file's repositories do not list it",
			repo, events.AnnotationRepository, events.AnnotationImageSource)
	case keys.Namespace != "":
		return nil, fmt.Sprintf("%s map repository %s to other namespaces than %s, or only to other SARIF categories than %q", from, repo, keys.Namespace, keys.Category)
	}
	return nil, fmt.Sprintf("%s map repository %s only to other SARIF categories than %q", from, repo, keys.Category)
}

// Decide the record of an upload: joined to targets, or not for reason.
func joinRecord(u *Upload, keys JoinKeys, targets []RepoTarget, reason string) *UploadJoin {
	j := &UploadJoin{UploadID: u.ID, Keys: keys, Upload: u, Targets: targets}
	if len(targets) > 0 {
		j.State = JoinJoined
	} else {
		j.State, j.Reason = JoinNotJoined, reason
	}
	return j
}

// JoinUpload decides an upload's join: its record, and the inputs to
// apply to the targets' namespaces.
func JoinUpload(r Rules, in Input, seen []RepoTarget) (*UploadJoin, []Input) {
	targets, reason := JoinTargets(r, *in.Join, seen)
	rec := joinRecord(in.Upload, *in.Join, targets, reason)
	return rec, JoinedInputs(rec)
}

// JoinedInputs are the inputs that apply a joined upload to its targets'
// namespaces, one per target: the upload with the target's app, known
// there as <upload id>@<app> (one repository may be the code of two apps of
// a namespace). A namespace that has it already sees a duplicate and
// changes nothing, whatever the order the targets were learnt in.
func JoinedInputs(rec *UploadJoin) []Input {
	var out []Input
	for _, t := range rec.Targets {
		u := *rec.Upload
		u.ID, u.App = rec.UploadID+"@"+t.App, t.App
		out = append(out, Input{EventID: u.EventID, Namespace: t.Namespace, Upload: &u})
	}
	return out
}

// KeepJoined is the rule that a join is never undone: rec (a new decision
// for an upload) with the targets old (its earlier record) had too. A
// redelivered upload keeps what it was joined to and gains the targets
// learnt since.
func KeepJoined(old, rec *UploadJoin) *UploadJoin {
	all := append(slices.Clone(old.Targets), rec.Targets...)
	slices.SortFunc(all, compareTargets)
	all = slices.CompactFunc(all, func(a, b RepoTarget) bool { return a.Key() == b.Key() })
	out := *rec
	out.Targets = all
	if len(all) > 0 {
		out.State, out.Reason = JoinJoined, ""
	}
	return &out
}
