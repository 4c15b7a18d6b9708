package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stateguard/stateguard/services/certwatcher/internal/certgentest"
	"github.com/stateguard/stateguard/services/certwatcher/internal/inventory"
)

// pagedLister serves fixed pages, then fails if failAt says so.
type pagedLister struct {
	pages  [][]corev1.Secret
	failAt int // page index that fails; -1 for none
}

func (p *pagedLister) List(_ context.Context, o metav1.ListOptions) (*corev1.SecretList, error) {
	i, _ := strconv.Atoi(o.Continue) // "" is page 0
	if i == p.failAt {
		return nil, errors.New("connection reset")
	}
	l := &corev1.SecretList{ListMeta: metav1.ListMeta{ResourceVersion: "100"}, Items: p.pages[i]}
	if i+1 < len(p.pages) {
		l.Continue = fmt.Sprint(i + 1)
	}
	return l, nil
}

// summary describes records for comparison: key → subjects or the error.
func summary(recs []inventory.Record) map[string]string {
	out := map[string]string{}
	for _, r := range recs {
		if r.Err != nil {
			out[r.Source.Key] = "error: " + r.Err.Error()
			continue
		}
		s := ""
		for _, c := range r.Chain {
			s += c.Subject.CommonName + ";"
		}
		out[r.Source.Key] = s
	}
	return out
}

func TestListParsesAheadOfTheHandlers(t *testing.T) {
	ca := certgentest.New(t, certgentest.CommonName("ca"), certgentest.CA())
	web := certgentest.New(t, certgentest.CommonName("web"), certgentest.SignedBy(ca))
	secret := func(name, rv string, typ corev1.SecretType, data map[string][]byte) corev1.Secret {
		return corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, ResourceVersion: rv}, Type: typ, Data: data}
	}
	pages := [][]corev1.Secret{
		{
			secret("chain", "1", corev1.SecretTypeTLS, map[string][]byte{"tls.crt": certgentest.ChainPEM(web, ca), "tls.key": web.KeyPEM}),
			secret("key-as-cert", "2", corev1.SecretTypeTLS, map[string][]byte{"tls.crt": web.KeyPEM}),
		},
		{
			secret("bundle", "3", corev1.SecretTypeOpaque, map[string][]byte{
				"bundle.pem": append(append([]byte{}, web.KeyPEM...), web.CertPEM...), "key.pem": web.KeyPEM,
			}),
			secret("garbage", "4", corev1.SecretTypeTLS, map[string][]byte{"tls.crt": []byte("not a certificate")}),
		},
	}
	d, err := New(t.Context(), Options{Client: env.Client, Store: inventory.New(nil), Log: slog.New(slog.DiscardHandler), PEMKeyPatterns: patterns})
	if err != nil {
		t.Fatal(err)
	}
	d.done = t.Context().Done()
	list, err := d.listSecrets(t.Context(), secretPages(nil, &pagedLister{pages: pages, failAt: -1}, "ns"), metav1.ListOptions{ResourceVersion: "0", Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 4 || list.ResourceVersion != "100" || list.Continue != "" {
		t.Fatalf("list = %d items, rv %q, continue %q", len(list.Items), list.ResourceVersion, list.Continue)
	}
	for i := range list.Items {
		// The handler sees the Secret as the informer's transform leaves it.
		obj, err := d.strip(&list.Items[i])
		if err != nil {
			t.Fatal(err)
		}
		s := obj.(*corev1.Secret)
		got, ok := d.takeParsed(s)
		if !ok {
			t.Fatalf("%s: not parsed ahead", s.Name)
		}
		if diff := cmp.Diff(summary(secretRecords(s, patterns, nil)), summary(got)); diff != "" {
			t.Errorf("%s: parsed ahead differs from parsing the cached Secret (-want +got)\n%s", s.Name, diff)
		}
		if _, again := d.takeParsed(s); again {
			t.Errorf("%s: taken twice", s.Name)
		}
	}

	// A Secret changed since the list is parsed by its handler.
	if _, err := d.listSecrets(t.Context(), secretPages(nil, &pagedLister{pages: pages[:1], failAt: -1}, "ns"), metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	newer := pages[0][0].DeepCopy()
	newer.ResourceVersion = "9"
	if _, ok := d.takeParsed(newer); ok {
		t.Error("records of resourceVersion 1 taken for resourceVersion 9")
	}

	// A list that fails half-way leaves nothing behind.
	d.parsed = map[string]*parsedSecret{}
	if _, err := d.listSecrets(t.Context(), secretPages(nil, &pagedLister{pages: pages, failAt: 1}, "ns"), metav1.ListOptions{}); err == nil {
		t.Fatal("no error from a failing list")
	}
	if len(d.parsed) != 0 {
		t.Errorf("a failed list left %d parsed Secrets", len(d.parsed))
	}
}
