package events_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/events/internal/schemagen"
)

// example fills every field of a payload type with a plausible value, so
// validation covers each field, nested ones included.
// With minimal, slices and pointers stay nil (JSON null).
func example(t reflect.Type) reflect.Value { return build(t, false) }

func minimal(t reflect.Type) reflect.Value { return build(t, true) }

func build(t reflect.Type, minimal bool) reflect.Value {
	v := reflect.New(t).Elem()
	fill(v, "", 0, minimal)
	return v
}

func fill(v reflect.Value, tag string, depth int, minimal bool) {
	if depth > 6 {
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString("x")
		// A field with an enum gets its first allowed value.
		for _, part := range strings.Split(tag, ",") {
			if e, ok := strings.CutPrefix(part, "enum="); ok {
				v.SetString(e)
				break
			}
		}
	case reflect.Int, reflect.Int64:
		v.SetInt(3)
	case reflect.Float64:
		v.SetFloat(6.5)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Slice:
		if minimal {
			return
		}
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fill(s.Index(0), tag, depth+1, minimal)
		v.Set(s)
	case reflect.Pointer:
		if minimal {
			return
		}
		p := reflect.New(v.Type().Elem())
		fill(p.Elem(), tag, depth+1, minimal)
		v.Set(p)
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(time.Time{}) {
			v.Set(reflect.ValueOf(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)))
			return
		}
		for i := range v.NumField() {
			if f := v.Type().Field(i); f.IsExported() {
				fill(v.Field(i), f.Tag.Get("jsonschema"), depth+1, minimal)
			}
		}
	}
}

func compile(t *testing.T, spec events.Spec) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open(filepath.Join("schemas", spec.Schema()))
	if err != nil {
		t.Fatalf("schema of %s: %v (run `make generate`)", spec.Type, err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource(spec.Schema(), doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(spec.Schema())
	if err != nil {
		t.Fatalf("compile %s: %v", spec.Schema(), err)
	}
	return s
}

func validate(t *testing.T, s *jsonschema.Schema, payload any) error {
	t.Helper()
	b, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return s.Validate(inst)
}

func TestEveryPayloadValidatesAgainstItsSchema(t *testing.T) {
	for _, spec := range events.Catalogue {
		t.Run(spec.Type, func(t *testing.T) {
			s := compile(t, spec)
			typ := reflect.TypeOf(spec.Payload)
			if err := validate(t, s, example(typ).Interface()); err != nil {
				t.Errorf("filled %s does not validate: %v", typ.Name(), err)
			}
			if err := validate(t, s, minimal(typ).Interface()); err != nil {
				t.Errorf("%s with nil slices and pointers does not validate: %v", typ.Name(), err)
			}
		})
	}
}

func TestSchemasRejectWrongShapes(t *testing.T) {
	spec, _ := events.Lookup(events.TypeSARIFUploaded)
	s := compile(t, spec)
	good := example(reflect.TypeOf(events.SARIFUploaded{})).Interface()
	b, _ := json.Marshal(good)
	for name, mutate := range map[string]func(map[string]any){
		"missing upload_id":        func(m map[string]any) { delete(m, "upload_id") },
		"results_total a string":   func(m map[string]any) { m["results_total"] = "many" },
		"severity outside enum":    func(m map[string]any) { m["new_findings"].([]any)[0].(map[string]any)["severity"] = "catastrophic" },
		"received_at not a time":   func(m map[string]any) { m["received_at"] = "yesterday" },
		"by_severity without high": func(m map[string]any) { delete(m["by_severity"].(map[string]any), "high") },
	} {
		t.Run(name, func(t *testing.T) {
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			mutate(m)
			if err := validate(t, s, m); err == nil {
				t.Error("schema accepted it")
			}
		})
	}
}

func TestCommittedSchemasMatchTheGoTypes(t *testing.T) {
	for _, spec := range events.Catalogue {
		want, err := schemagen.Schema(spec)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join("schemas", spec.Schema()))
		if err != nil {
			t.Fatalf("%v (run `make generate`)", err)
		}
		if string(bytes.TrimSpace(got)) != string(want) {
			t.Errorf("schemas/%s is stale: run `make generate`", spec.Schema())
		}
	}
	entries, err := os.ReadDir("schemas")
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(events.Catalogue) {
		t.Errorf("schemas/ holds %d files for %d catalogued types", len(entries), len(events.Catalogue))
	}
}

func TestREADMEEventTableMatchesTheCatalogue(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := schemagen.ReplaceTable(string(readme))
	if err != nil {
		t.Fatal(err)
	}
	if want != string(readme) {
		t.Error("README.md's event table is stale: run `make generate`")
	}
	for _, spec := range events.Catalogue {
		if !strings.Contains(string(readme), "`"+spec.Type+"`") {
			t.Errorf("README does not list %s", spec.Type)
		}
	}
}

// Field descriptions reach the schemas whole (invopop/jsonschema cuts a
// description= tag at its first comma; jsonschema_description keeps it).
func TestSchemaDescriptionsAreWhole(t *testing.T) {
	for _, spec := range events.Catalogue {
		raw, err := os.ReadFile(filepath.Join("schemas", spec.Schema()))
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		var walk func(reflect.Type, int)
		walk = func(typ reflect.Type, depth int) {
			for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice {
				typ = typ.Elem()
			}
			if typ.Kind() != reflect.Struct || depth > 5 {
				return
			}
			for i := range typ.NumField() {
				f := typ.Field(i)
				if strings.Contains(f.Tag.Get("jsonschema"), "description=") {
					t.Errorf("%s.%s: use jsonschema_description, description= is cut at the first comma", typ.Name(), f.Name)
				}
				if d := f.Tag.Get("jsonschema_description"); d != "" {
					want = append(want, d)
				}
				walk(f.Type, depth+1)
			}
		}
		walk(reflect.TypeOf(spec.Payload), 0)
		for _, d := range want {
			quoted, _ := json.Marshal(d)
			if !bytes.Contains(raw, quoted) {
				t.Errorf("schemas/%s lacks the whole description %s", spec.Schema(), quoted)
			}
		}
	}
}

func TestEveryTypeSpecifiesItsCESubject(t *testing.T) {
	for _, spec := range events.Catalogue {
		if events.SubjectAttributes[spec.Type] == "" {
			t.Errorf("%s: no ce-subject in SubjectAttributes", spec.Type)
		}
		sj, ok := spec.Payload.(events.Subjecter)
		if !ok {
			t.Errorf("%s: payload %T does not implement Subjecter", spec.Type, spec.Payload)
			continue
		}
		filled := example(reflect.TypeOf(spec.Payload)).Interface()
		ev, err := events.NewEvent(spec.Type, "/test", "id-1", filled)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Subject() == "" || ev.Subject() != filled.(events.Subjecter).CESubject() {
			t.Errorf("%s: ce-subject %q, want %q", spec.Type, ev.Subject(), sj.CESubject())
		}
	}
}

func TestObservationIDIsTheContent(t *testing.T) {
	at := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	a := events.WorkloadObserved{Namespace: "shop", PVC: "data", ObservedAt: at, Pods: []events.ObservedPod{
		{Pod: "db-0", Containers: []events.Container{{Name: "db", Digest: "sha256:aa"}}, Secrets: []string{"t1", "t2"}},
		{Pod: "db-1", Containers: []events.Container{{Name: "db", Digest: "sha256:aa"}}},
	}}
	b := a
	b.Resync = true
	b.Pods = []events.ObservedPod{a.Pods[1], {Pod: "db-0", Containers: a.Pods[0].Containers, Secrets: []string{"t2", "t1"}}}
	if events.ObservationID(a) != events.ObservationID(b) {
		t.Error("a resync of the same observation, pods in another order, has another id")
	}
	c := a
	c.Pods = []events.ObservedPod{a.Pods[0], {Pod: "db-1", Containers: []events.Container{{Name: "db", Digest: "sha256:bb"}}}}
	if events.ObservationID(a) == events.ObservationID(c) {
		t.Error("a new digest gives the same id")
	}
	// Join annotations count; a pod without them keeps the id it had
	// before they were observed (the value below is the one the code gave
	// before; computed at that commit).
	if got, want := events.ObservationID(a), "observed-2f8711b672e5dbbbd95fc53ea2516403"; got != want {
		t.Errorf("id %s, want %s", got, want)
	}
	d := a
	d.Pods = []events.ObservedPod{a.Pods[0], {Pod: "db-1", Containers: a.Pods[1].Containers, Annotations: map[string]string{events.AnnotationRepository: "acme/shop"}}}
	if events.ObservationID(a) == events.ObservationID(d) {
		t.Error("a repository annotation gives the same id")
	}
}
