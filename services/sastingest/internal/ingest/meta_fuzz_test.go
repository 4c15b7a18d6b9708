package ingest

import "testing"

// FuzzMetadataValidate: metadata that Validate accepts has every
// identifier within its bound, whatever the input.
func FuzzMetadataValidate(f *testing.F) {
	f.Add("acme/shop", "0123456789abcdef0123456789abcdef01234567", "refs/heads/main", "gosec", "shop", "prod", "1.4.2", "production", "registry.example/shop@sha256:aaaa")
	f.Add("a/b", "", "", "Some Tool", "", "", "", "", "")
	f.Fuzz(func(t *testing.T, repo, commit, ref, category, app, ns, version, env, image string) {
		m := Metadata{Repository: repo, CommitSHA: commit, Ref: ref, Category: category, App: app, Namespace: ns, Version: version, Environment: env, Images: []string{image}}
		if m.Validate() != nil {
			return
		}
		for _, s := range []struct {
			v     string
			limit int
		}{{repo, MaxRepositoryBytes}, {commit, 64}, {ref, MaxRefBytes}, {category, MaxCategoryBytes}, {app, MaxLabelBytes}, {ns, MaxLabelBytes}, {version, MaxVersionBytes}, {env, MaxLabelBytes}, {image, MaxImageBytes}} {
			if len(s.v) > s.limit {
				t.Fatalf("accepted %d bytes over a limit of %d", len(s.v), s.limit)
			}
			for i := 0; i < len(s.v); i++ {
				if s.v[i] < ' ' || s.v[i] >= 0x7f {
					t.Fatalf("accepted a control or non-ASCII byte in %q", s.v)
				}
			}
		}
	})
}
