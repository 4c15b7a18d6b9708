package events

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/nats-io/nats.go"
)

func TestPercentEncodingRoundTrips(t *testing.T) {
	for _, s := range []string{"plain", "with space", `quote"d`, "100%", "ünïcode ✓", "tab\tand\nnewline", ""} {
		enc := pctEncode(s)
		for i := 0; i < len(enc); i++ {
			if c := enc[i]; c <= 0x20 || c >= 0x7f || c == '"' {
				t.Errorf("pctEncode(%q) = %q keeps byte %q", s, enc, c)
			}
		}
		dec, err := pctDecode(enc)
		if err != nil || dec != s {
			t.Errorf("round trip of %q: %q, %v", s, dec, err)
		}
	}
	for _, bad := range []string{"%", "%4", "%zz"} {
		if _, err := pctDecode(bad); err == nil {
			t.Errorf("pctDecode(%q) accepted a broken escape", bad)
		}
	}
}

func TestDecodeReadsStructuredMode(t *testing.T) {
	ev := MustNewEvent(TypeSnapshotFailed, "/test", "f-1", SnapshotFailed{Namespace: "ns", PVC: "p", Error: "boom"})
	body, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg("stateguard.snapshot.failed")
	m.Header.Set("Content-Type", "application/cloudevents+json")
	m.Data = body
	got, err := DecodeMsg(m)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Decode[SnapshotFailed](got)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID() != "f-1" || got.Type() != TypeSnapshotFailed || p.Error != "boom" {
		t.Errorf("decoded %v / %+v", got, p)
	}
}

func TestDecodeRejectsWhatIsNotAnEvent(t *testing.T) {
	for name, m := range map[string]*nats.Msg{
		"plain text":        {Data: []byte("hello"), Header: nats.Header{}},
		"wrong specversion": {Data: []byte("{}"), Header: nats.Header{"ce-specversion": {"0.3"}}},
		"missing id": {Data: []byte("{}"), Header: nats.Header{
			"ce-specversion": {"1.0"}, "ce-type": {TypeSnapshotFailed}, "ce-source": {"/x"}}},
		"bad time": {Data: []byte("{}"), Header: nats.Header{
			"ce-specversion": {"1.0"}, "ce-type": {TypeSnapshotFailed}, "ce-source": {"/x"}, "ce-id": {"1"}, "ce-time": {"noon"}}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := DecodeMsg(m); !errors.Is(err, ErrMalformed) {
				t.Errorf("err = %v, want ErrMalformed", err)
			}
		})
	}
}

func TestNewEventRejectsUnknownTypes(t *testing.T) {
	if _, err := NewEvent("io.stateguard.nope.v1", "/x", "1", struct{}{}); !errors.Is(err, ErrUnknownType) {
		t.Errorf("err = %v, want ErrUnknownType", err)
	}
}

func TestDecodeOfBadDataIsPermanent(t *testing.T) {
	ev := MustNewEvent(TypeSnapshotFailed, "/test", "f-2", SnapshotFailed{})
	ev.DataEncoded = []byte(`{"namespace": 5}`)
	if _, err := Decode[SnapshotFailed](ev); !IsPermanent(err) {
		t.Errorf("err = %v, want a permanent error", err)
	}
}

func TestSubjectsAndStreams(t *testing.T) {
	for typ, want := range map[string][2]string{
		TypeSARIFUploaded:              {"stateguard.sarif.uploaded", StreamSARIF},
		TypeCertificateRotationRequest: {"stateguard.certificate.rotation.requested", StreamCertificate},
		TypeSnapshotPinRequested:       {"stateguard.snapshot.pin.requested", StreamSnapshot},
		TypeRestoreRecommended:         {"stateguard.restore.recommended", StreamDecision},
		TypeIncidentClosed:             {"stateguard.incident.closed", StreamDecision},
	} {
		if got := [2]string{SubjectOf(typ), StreamOf(typ)}; got != want {
			t.Errorf("%s → %v, want %v", typ, got, want)
		}
	}
	// Every catalogued subject is captured by its stream's subjects.
	for _, s := range Catalogue {
		if !subjectMatchesAny(s.Subject(), StreamSubjects[s.Stream()]) {
			t.Errorf("%s: subject %s not captured by stream %s", s.Type, s.Subject(), s.Stream())
		}
	}
}

func subjectMatchesAny(subject string, patterns []string) bool {
	for _, p := range patterns {
		if len(p) > 1 && p[len(p)-1] == '>' && len(subject) >= len(p)-1 && subject[:len(p)-1] == p[:len(p)-1] {
			return true
		}
	}
	return false
}
