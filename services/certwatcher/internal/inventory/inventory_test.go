package inventory

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stateguard/stateguard/pkg/events"
)

func TestStore(t *testing.T) {
	var changed [][]Record
	s := New(func(r []Record) { changed = append(changed, r) })
	rec := func(ns, secret, key string) Record {
		return Record{Source: events.CertificateSource{Namespace: ns, Secret: secret, Key: key}, Err: errors.New("x")}
	}
	s.ReplaceSecret("b", "web", []Record{rec("b", "web", "tls.crt"), rec("b", "web", "ca.crt")})
	s.ReplaceSecret("a", "api", []Record{rec("a", "api", "tls.crt")})
	s.ReplaceFile("/etc/x.pem", []Record{{Source: events.CertificateSource{Path: "/etc/x.pem"}}})
	s.ReplaceSecret("b", "web", []Record{rec("b", "web", "tls.crt")})
	if s.Len() != 3 {
		t.Errorf("Len = %d, want 3", s.Len())
	}
	var got []string
	for _, r := range s.All() {
		got = append(got, r.Source.Path+r.Source.Namespace+"/"+r.Source.Secret+"/"+r.Source.Key)
	}
	want := []string{"/etc/x.pem//", "a/api/tls.crt", "b/web/tls.crt"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("All (-want +got)\n%s", diff)
	}
	s.ReplaceSecret("a", "api", nil)
	s.ReplaceFile("/etc/x.pem", nil)
	if s.Len() != 1 || len(s.Files()) != 0 || len(s.Secret("a", "api")) != 0 {
		t.Errorf("after deletes: len %d files %v", s.Len(), s.Files())
	}
	if len(changed) != 4 {
		t.Errorf("changed called %d times, want 4 (not for deletes)", len(changed))
	}
}
