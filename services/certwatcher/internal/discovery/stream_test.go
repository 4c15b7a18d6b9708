package discovery

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/stateguard/stateguard/services/certwatcher/internal/certgentest"
)

func names(items []corev1.Secret) []string {
	var out []string
	for _, s := range items {
		out = append(out, s.Name)
	}
	return out
}

func TestStreamedListMatchesList(t *testing.T) {
	ns := namespace(t)
	ctx := t.Context()
	leaf := certgentest.New(t, certgentest.CommonName("web"))
	for i := range 5 {
		if _, err := env.Client.CoreV1().Secrets(ns).Create(ctx, tlsSecret(ns, fmt.Sprintf("s%d", i), leaf.CertPEM, leaf.KeyPEM), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	want, err := env.Client.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// In pages of 2, through the default (JSON) client: the stream asks
	// for protobuf itself.
	var got, seen []corev1.Secret
	o := metav1.ListOptions{Limit: 2}
	for pages := 1; ; pages++ {
		l, err := streamSecrets(ctx, env.Client.CoreV1().RESTClient(), ns, o, func(s *corev1.Secret) *corev1.Secret {
			seen = append(seen, *s)
			return s
		})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, l.Items...)
		if l.Continue == "" {
			if pages != 3 {
				t.Errorf("%d pages of 2 for 5 Secrets", pages)
			}
			break
		}
		o.Continue = l.Continue
	}
	if diff := cmp.Diff(names(want.Items), names(got)); diff != "" {
		t.Fatalf("(-List +stream)\n%s", diff)
	}
	if diff := cmp.Diff(names(got), names(seen)); diff != "" {
		t.Errorf("each saw other Secrets than the list holds (-list +seen)\n%s", diff)
	}
	for i := range got {
		if !bytes.Equal(got[i].Data[corev1.TLSCertKey], want.Items[i].Data[corev1.TLSCertKey]) || got[i].ResourceVersion != want.Items[i].ResourceVersion {
			t.Errorf("%s differs from the List's", got[i].Name)
		}
	}
}

// protobufList encodes l as the API server does.
func protobufList(t *testing.T, l *corev1.SecretList) []byte {
	t.Helper()
	raw, err := l.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	u := runtime.Unknown{TypeMeta: runtime.TypeMeta{APIVersion: "v1", Kind: "SecretList"}, Raw: raw}
	body, err := u.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return append(append([]byte{}, protobufMagic...), body...)
}

func TestDecodeSecretStream(t *testing.T) {
	l := &corev1.SecretList{ListMeta: metav1.ListMeta{ResourceVersion: "42", Continue: "next"}}
	for i := range 3 {
		l.Items = append(l.Items, corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: fmt.Sprintf("s%d", i), ResourceVersion: fmt.Sprint(i)},
			Type:       corev1.SecretTypeTLS, Data: map[string][]byte{"tls.crt": bytes.Repeat([]byte{byte(i)}, 100)},
		})
	}
	body := protobufList(t, l)
	keep := func(s *corev1.Secret) *corev1.Secret { return s }

	got, err := decodeSecretStream(bytes.NewReader(body), keep)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(l, got); diff != "" {
		t.Errorf("(-encoded +decoded)\n%s", diff)
	}

	t.Run("every body cut inside the list is an error", func(t *testing.T) {
		// The body ends with the empty contentEncoding (field 3) and
		// contentType (field 4), which a message may leave out.
		tail := []byte{3<<3 | 2, 0, 4<<3 | 2, 0}
		if !bytes.HasSuffix(body, tail) {
			t.Fatalf("body ends with % x", body[len(body)-4:])
		}
		for n := range len(body) - len(tail) {
			if _, err := decodeSecretStream(bytes.NewReader(body[:n]), keep); err == nil {
				t.Fatalf("no error for the first %d of %d bytes", n, len(body))
			}
		}
	})
	t.Run("a JSON body is told apart", func(t *testing.T) {
		j, _ := json.Marshal(l)
		if _, err := decodeSecretStream(bytes.NewReader(j), keep); !errors.Is(err, errNotProtobuf) {
			t.Errorf("err = %v, want errNotProtobuf", err)
		}
	})
	t.Run("a compressed body is refused", func(t *testing.T) {
		raw, _ := l.Marshal()
		u := runtime.Unknown{Raw: raw, ContentEncoding: "gzip"}
		b, _ := u.Marshal()
		if _, err := decodeSecretStream(bytes.NewReader(append(append([]byte{}, protobufMagic...), b...)), keep); err == nil {
			t.Error("no error for a content encoding")
		}
	})
}
