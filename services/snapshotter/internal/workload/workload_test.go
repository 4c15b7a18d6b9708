package workload

import "testing"

func TestDigest(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"docker-pullable://ghcr.io/acme/api@sha256:abc", "sha256:abc"},
		{"ghcr.io/acme/api@sha256:def", "sha256:def"},
		{"sha256:123", "sha256:123"},
		{"docker://ghcr.io/acme/api:1.0", ""},
		{"", ""},
	} {
		if got := Digest(c.in); got != c.want {
			t.Errorf("Digest(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
