package events

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Decode reads payloads with the encoding/json/v2 implementation set to
// encoding/json's semantics: the same value, or an error, wherever
// encoding/json gives one.
func TestDecodeReadsWhatEncodingJSONReads(t *testing.T) {
	for _, data := range []string{
		`{"namespace":"shop","pvc":"data","volume_snapshot":"s1","creation_time":"2026-11-01T10:00:00Z","workloads":[{"pod":"db-0","containers":[{"name":"db","image":"db:1","digest":"sha256:ab"}]}]}`,
		`{"NAMESPACE":"shop","Volume_Snapshot":"s1","creation_time":"2026-11-01T10:00:00.123+02:00","workloads":null,"unknown":{"a":[1,2]}}`,
		`{"namespace":"shop","namespace":"dup","workloads":[{"pod":"p","owner":{"kind":"StatefulSet","namespace":"shop","name":"db"},"containers":[]}]}`,
		"{\"namespace\":\"caf\xe9\",\"workloads\":[]}",
		`{"namespace":5}`,
		`{"creation_time":"yesterday"}`,
		`{"workloads":{}}`,
		`[1,2]`,
		`{"namespace":"shop"} trailing`,
	} {
		want := SnapshotCompleted{}
		wantErr := json.Unmarshal([]byte(data), &want)
		ev := MustNewEvent(TypeSnapshotCompleted, "test", "e1", map[string]any{})
		if err := ev.SetData("application/json", []byte(data)); err != nil {
			t.Fatal(err)
		}
		got, err := Decode[SnapshotCompleted](ev)
		switch {
		case (err != nil) != (wantErr != nil):
			t.Errorf("%s: Decode error %v, encoding/json error %v", data, err, wantErr)
		case err != nil:
			var perm *PermanentError
			if !errors.As(err, &perm) {
				t.Errorf("%s: error %v is not permanent", data, err)
			}
		default:
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s: Decode differs from encoding/json (-json +Decode):\n%s", data, diff)
			}
		}
	}
}

// Every event names the JSON Schema of its type, the same after the first
// event of a type (its parsed URL is kept) as before.
func TestNewEventNamesItsSchema(t *testing.T) {
	for _, typ := range []string{TypeSnapshotCompleted, TypeSnapshotPinRequested, TypeSnapshotCompleted} {
		ev := MustNewEvent(typ, "test", "e1", map[string]any{})
		if got, want := ev.DataSchema(), SchemaURL(typ); got != want {
			t.Errorf("%s: dataschema %q, want %q", typ, got, want)
		}
		if err := ev.Validate(); err != nil {
			t.Errorf("%s: %v", typ, err)
		}
	}
}

// A decoded event carries the dataschema it was sent with: one of ours
// (parsed once) or anybody else's.
func TestDataSchemaRoundTrips(t *testing.T) {
	ours := MustNewEvent(TypeSnapshotPinRequested, "test", "e1", map[string]any{})
	theirs := ours.Clone()
	theirs.SetDataSchema("https://example.com/schemas/pin.json")
	for _, ev := range []Event{ours, theirs} {
		m, err := Encode(ev)
		if err != nil {
			t.Fatal(err)
		}
		back, err := DecodeMsg(m)
		if err != nil {
			t.Fatal(err)
		}
		if back.DataSchema() != ev.DataSchema() {
			t.Errorf("dataschema %q came back as %q", ev.DataSchema(), back.DataSchema())
		}
	}
}
