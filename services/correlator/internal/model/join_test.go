package model

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stateguard/stateguard/pkg/events"
)

func TestNormaliseRepository(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"owner/name stays, in lower case", "Acme/Shop", "acme/shop"},
		{"an https URL loses its host and .git", "https://github.com/acme/shop.git", "acme/shop"},
		{"a trailing slash goes", "https://github.example.com/acme/shop/", "acme/shop"},
		{"an scp-like git address", "git@github.com:acme/shop.git", "acme/shop"},
		{"a GitLab subgroup keeps its path", "https://gitlab.example.com/group/sub/shop", "group/sub/shop"},
		{"a bare name is no repository", "shop", ""},
		{"a host alone is no repository", "https://github.com/", ""},
		{"a query is no repository", "https://github.com/acme/shop?tab=x", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := NormaliseRepository(tc.in); got != tc.want {
				t.Errorf("NormaliseRepository(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestRepositoryAndCommitOfAPod(t *testing.T) {
	sha := strings.Repeat("ab", 20)
	for _, tc := range []struct {
		name               string
		ann                map[string]string
		repo, from, commit string
	}{
		{"stateguard's annotations win", map[string]string{events.AnnotationRepository: "acme/shop", events.AnnotationImageSource: "https://github.com/acme/other",
			events.AnnotationCommit: sha, events.AnnotationImageRevision: strings.Repeat("cd", 20)}, "acme/shop", SourceAnnotation, sha},
		{"the OCI ones stand in", map[string]string{events.AnnotationImageSource: "https://github.com/acme/shop", events.AnnotationImageRevision: strings.ToUpper(sha)},
			"acme/shop", SourceImageSource, sha},
		{"a revision that is not a SHA is none", map[string]string{events.AnnotationImageRevision: "v1.2.0"}, "", "", ""},
		{"nothing", nil, "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			repo, from := RepositoryOf(tc.ann)
			if repo != tc.repo || from != tc.from || CommitOf(tc.ann) != tc.commit {
				t.Errorf("repository %q from %q, commit %q; want %q from %q, %q", repo, from, CommitOf(tc.ann), tc.repo, tc.from, tc.commit)
			}
		})
	}
}

func TestJoinTargets(t *testing.T) {
	db := RepoTarget{Namespace: "shop", App: "db", Source: SourceAnnotation}
	web := RepoTarget{Namespace: "web", App: "web", Category: "CodeQL", Source: SourceImageSource}
	api := RepoTarget{Namespace: "shop", App: "api", Source: SourceRules}
	rules := DefaultRules()
	rules.Repositories = map[string][]RepoTarget{"acme/api": {api}}
	for _, tc := range []struct {
		name   string
		keys   JoinKeys
		seen   []RepoTarget
		want   []RepoTarget
		reason string
	}{
		{"the workloads that name the repository", JoinKeys{Repository: "acme/shop", Category: "gosec"}, []RepoTarget{db}, []RepoTarget{db}, ""},
		{"none: not joined, and why", JoinKeys{Repository: "acme/shop"}, nil, nil, "no application runs repository acme/shop"},
		{"the rules file wins over workloads", JoinKeys{Repository: "acme/api"}, []RepoTarget{db}, []RepoTarget{api}, ""},
		{"a category limits a target, without case", JoinKeys{Repository: "acme/shop", Category: "codeql"}, []RepoTarget{db, web}, []RepoTarget{db, web}, ""},
		{"another category is not taken", JoinKeys{Repository: "acme/shop", Category: "gosec"}, []RepoTarget{web}, nil, `only to other SARIF categories than "gosec"`},
		{"a namespace the uploader named limits the targets", JoinKeys{Repository: "acme/shop", Namespace: "web"}, []RepoTarget{db, web}, nil, "to other namespaces than web"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, reason := JoinTargets(rules, tc.keys, tc.seen)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("targets (-want +got):\n%s", diff)
			}
			if tc.reason == "" && reason != "" || !strings.Contains(reason, tc.reason) {
				t.Errorf("reason %q, want one with %q", reason, tc.reason)
			}
		})
	}
}

// An upload's commit joins the version whose pods carry it — by
// annotation, or by an app.kubernetes.io/version that is the SHA — when no
// upload names the digest.
func TestCommitJoinsTheVersion(t *testing.T) {
	sha := strings.Repeat("ab", 20)
	st := NewState("shop")
	st.Uploads = map[string]*Upload{"u@db": {ID: "u@db", App: "db", Category: "CodeQL", Keys: []string{"commit:" + sha},
		Counts: events.SeverityCounts{Critical: 1}, Findings: []Finding{{RuleID: "G402", Severity: "critical"}}}}
	vd := newVerdicts(DefaultRules(), st, "db")
	for _, tc := range []struct {
		name string
		w    Workload
		want string
	}{
		{"the commit annotation", Workload{App: "db", Label: "1.0.0", Commit: sha}, Vulnerable},
		{"a version label that is the SHA", Workload{App: "db", Label: sha}, Vulnerable},
		{"another commit", Workload{App: "db", Label: "1.0.0", Commit: strings.Repeat("cd", 20)}, Unknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := vd.ofWorkload(tc.w, "sha256:1").Verdict; got != tc.want {
				t.Errorf("verdict %s, want %s", got, tc.want)
			}
		})
	}
}
