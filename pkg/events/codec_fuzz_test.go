package events

import (
	"bytes"
	"testing"

	"github.com/nats-io/nats.go"
)

// FuzzDecodeMsg decodes arbitrary NATS messages, binary mode (ce- headers)
// and structured mode (a JSON body). A message is an event or
// ErrMalformed, never a panic; an accepted event validates, and encoded
// again and decoded it is the same event (attributes, extensions, data).
func FuzzDecodeMsg(f *testing.F) {
	ev := MustNewEvent(TypeSnapshotFailed, "/test", "f-1", SnapshotFailed{Namespace: "ns", PVC: "p", Error: "boom"})
	m, err := Encode(ev)
	if err != nil {
		f.Fatal(err)
	}
	structured, _ := ev.MarshalJSON()
	f.Add("1.0", "f-1", "/test", TypeSnapshotFailed, "2025-01-01T00:00:00Z", "application/json", "x", m.Data, false)
	f.Add("1.0", "id%20x", "/a%22b", "t", "", "", "%zz", []byte("{}"), false)
	f.Add("", "", "", "", "", "application/cloudevents+json", "", structured, true)
	f.Add("", "", "", "", "", "", "", []byte(` {"specversion":"1.0","id":"1","source":"/s","type":"t","data":{"a":1}}`), true)
	f.Fuzz(func(t *testing.T, sv, id, source, typ, tm, ct, ext string, data []byte, structuredMode bool) {
		m := &nats.Msg{Header: nats.Header{}, Data: data}
		if !structuredMode {
			for k, v := range map[string]string{"ce-specversion": sv, "ce-id": id, "ce-source": source, "ce-type": typ, "ce-time": tm, "ce-fuzzext": ext} {
				if v != "" {
					m.Header.Set(k, v)
				}
			}
		}
		if ct != "" {
			m.Header.Set(headerContentType, ct)
		}
		got, err := DecodeMsg(m)
		if err != nil {
			return
		}
		if err := got.Validate(); err != nil {
			t.Fatalf("decoded an event that does not validate: %v", err)
		}
		enc, err := Encode(got)
		if err != nil {
			t.Fatalf("a decoded event does not encode: %v", err)
		}
		again, err := DecodeMsg(enc)
		if err != nil {
			t.Fatalf("an encoded event does not decode: %v", err)
		}
		if again.ID() != got.ID() || again.Source() != got.Source() || again.Type() != got.Type() ||
			again.Subject() != got.Subject() || !again.Time().Equal(got.Time()) || again.DataContentType() != got.DataContentType() ||
			!bytes.Equal(again.Data(), got.Data()) || len(again.Extensions()) != len(got.Extensions()) {
			t.Fatalf("round trip changed the event:\n%v\n%v", got, again)
		}
		for k, v := range got.Extensions() {
			if w := again.Extensions()[k]; w != v {
				t.Fatalf("extension %s: %v, then %v", k, v, w)
			}
		}
	})
}
