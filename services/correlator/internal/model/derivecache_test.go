package model

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stateguard/stateguard/pkg/events"
	scenario "github.com/stateguard/stateguard/services/correlator/internal/scenariotest"
)

// With a short history prune drops snapshots on most events; the views kept
// between events must follow (feed compares them with a fresh derivation
// after every event). Each snapshot of the random scenarios is followed by
// two more of the same versions (prune keeps the first of each set of
// versions: without runs of them it would forget little).
func TestCachedViewsFollowPrunedSnapshots(t *testing.T) {
	r := DefaultRules()
	r.History = 2
	pruned := 0
	for seed := range seeds(60) {
		evs := withRuns(t, randomScenario(seed), 2)
		for p := range uint64(3) {
			st := NewState("prop")
			evs := permute(evs, seed*100+p)
			feed(t, r, st, evs...)
			// The same events applied to a state that never keeps a cache
			// (so prune goes over every snapshot) end in the same state.
			plain := NewState("prop")
			for _, ev := range evs {
				in, err := FromEvent(ev)
				if err != nil {
					continue
				}
				plain.cache = nil
				if _, _, err := Apply(r, plain, in); err != nil {
					t.Fatal(err)
				}
			}
			if diff := cmp.Diff(outcomeOf(t, r, plain), outcomeOf(t, r, st)); diff != "" {
				t.Fatalf("seed %d permutation %d: with and without the cache (-without +with):\n%s", seed, p, diff)
			}
			n := 0
			for _, s := range st.Snapshots {
				if s.Completed {
					n++
				}
			}
			pruned += countSnapshotEvents(evs) - n
		}
	}
	if pruned == 0 {
		t.Fatal("no snapshot was pruned: the test does not exercise prune")
	}
}

// withRuns adds after each snapshot.completed of evs n more of the same
// PVC and workloads, ten minutes apart.
func withRuns(t *testing.T, evs []events.Event, n int) []events.Event {
	t.Helper()
	var out []events.Event
	for _, ev := range evs {
		out = append(out, ev)
		if ev.Type() != events.TypeSnapshotCompleted {
			continue
		}
		p, err := events.Decode[events.SnapshotCompleted](ev)
		if err != nil {
			t.Fatal(err)
		}
		name, at := p.VolumeSnapshot, p.CreationTime
		for i := range n {
			p.VolumeSnapshot, p.CreationTime = fmt.Sprintf("%s-%d", name, i), at.Add(time.Duration(i+1)*10*time.Minute)
			out = append(out, events.MustNewEvent(events.TypeSnapshotCompleted, ev.Source(), ev.ID()+"-"+strconv.Itoa(i), p))
		}
	}
	return out
}

func countSnapshotEvents(evs []events.Event) int {
	seen := map[string]bool{}
	for _, ev := range evs {
		if ev.Type() == events.TypeSnapshotCompleted {
			seen[ev.ID()] = true
		}
	}
	return len(seen)
}

// A rule changed between two events must not reuse views derived under the
// old rules: equal must see every field.
func TestRulesEqualSeesEveryField(t *testing.T) {
	base := DefaultRules()
	rv := reflect.ValueOf(&base).Elem()
	for i := range rv.NumField() {
		changed := base.clone()
		f := reflect.ValueOf(&changed).Elem().Field(i)
		switch f.Kind() {
		case reflect.Bool:
			f.SetBool(!f.Bool())
		case reflect.Int, reflect.Int64:
			f.SetInt(f.Int() + 1)
		case reflect.Slice:
			f.Set(reflect.Append(f, reflect.ValueOf("x")))
		case reflect.Map:
			changed.Repositories = map[string][]RepoTarget{"acme/x": {{Namespace: "x", App: "x", Source: SourceRules}}}
		default:
			t.Fatalf("field %s: kind %s not covered by this test", rv.Type().Field(i).Name, f.Kind())
		}
		if base.equal(changed) {
			t.Errorf("Rules.equal does not see a change of %s", rv.Type().Field(i).Name)
		}
	}
	if !base.equal(base.clone()) {
		t.Error("a clone of the rules is not equal to them")
	}
}

// The cache keeps an application's verdicts between events but not its
// uploads by version key (verdicts.release): a version first seen by a
// later event, known only through an alias — the version label of an image
// rebuilt under a new digest — must still find the upload that names the
// label (feed compares the kept views with a fresh derivation after each
// event).
func TestCachedVerdictsFindAnAliasSeenLater(t *testing.T) {
	r := DefaultRules()
	ns, at := "alias", scenario.T0
	rebuilt := func(name string, at time.Time) events.Event {
		p := events.SnapshotCompleted{Namespace: ns, PVC: "db-data", VolumeSnapshot: name, CreationTime: at, RestoreSize: "10Gi",
			Workloads: []events.VolumeWorkload{{Pod: "db-0", App: "db", Version: "v1", Owner: &events.ObjectRef{Kind: "StatefulSet", Namespace: ns, Name: "db"},
				Containers: []events.Container{{Name: "c0", Image: "registry.example/db:v1", Digest: scenario.Digest("v1-rebuilt")}}}}}
		return events.MustNewEvent(events.TypeSnapshotCompleted, scenario.Source, "snapshot-"+ns+"-"+name, p)
	}
	st := NewState(ns)
	feed(t, r, st,
		scenario.SARIF(ns, "db", "u1", "v1", at, scenario.Critical), // names v1's digest and its label
		scenario.Snapshot(ns, "db-data", "s1", at.Add(time.Hour), scenario.Run{App: "db", Versions: []string{"v0"}}),
		rebuilt("s2", at.Add(2*time.Hour)),
	)
	if st.cache == nil {
		t.Fatal("no view cache: the test does not exercise the kept verdicts")
	}
	var got string
	for _, av := range st.derive(r).Apps {
		for _, sv := range av.Snapshots {
			if sv.Name == "s2" {
				got = sv.Class
			}
		}
	}
	if got != Tainted {
		t.Fatalf("s2, of the rebuilt image of v1 (by its version label), is %q, want %q", got, Tainted)
	}
}

// The indexes that let a certificate event look at the applications and
// certificates it concerns only — applications by owner and by pod
// (usersGrew), the certificates by their users (certsNaming), each
// Secret's views — must follow facts that come after they were built: an
// application whose owner is named unlike it and whose snapshot comes
// after the first derivation, a pod first seen after a certificate named
// pods, users that grow, a certificate rotated, and a state read back
// (which has none of them). feed compares the views kept with a fresh
// derivation after every event.
func TestCertificateIndexesFollowLaterFacts(t *testing.T) {
	ns := "idx"
	at := scenario.T0
	snap := func(pvc, name, app, owner, pod string, k int) events.Event {
		p := events.SnapshotCompleted{
			Namespace: ns, PVC: pvc, VolumeSnapshot: name, CreationTime: at.Add(time.Duration(k) * time.Minute),
			RestoreSize: "10Gi", VolumeSnapshotClass: "csi-hostpath",
			Workloads: []events.VolumeWorkload{{
				Pod: pod, App: app, Owner: &events.ObjectRef{Kind: "StatefulSet", Namespace: ns, Name: owner},
				Containers: []events.Container{{Name: "c", Image: "registry.example/" + app + ":v1", Digest: scenario.Digest(app + "-v1")}},
			}},
		}
		return events.MustNewEvent(events.TypeSnapshotCompleted, scenario.Source, "snapshot-"+name, p)
	}
	cert := func(secret, serial string, days float64, users events.CertificateUsers) events.Event {
		ev := scenario.Cert(ns, secret, serial, at.Add(time.Duration(days*24)*time.Hour), days, nil, nil)
		p, err := events.Decode[events.CertificateExpiring](ev)
		if err != nil {
			t.Fatal(err)
		}
		p.Users = users
		out := events.MustNewEvent(events.TypeCertificateExpiring, scenario.Source, ev.ID()+"-"+fmt.Sprint(len(users.Workloads), len(users.Pods)), p)
		out.SetTime(ev.Time())
		return out
	}
	owner := func(name string) events.CertificateUsers {
		return events.CertificateUsers{Workloads: []events.WorkloadRef{{Kind: "StatefulSet", Namespace: ns, Name: name}}}
	}
	pods := func(names ...string) events.CertificateUsers {
		var u events.CertificateUsers
		for _, n := range names {
			u.Pods = append(u.Pods, events.ObjectRef{Kind: "Pod", Namespace: ns, Name: n})
		}
		return u
	}
	rotated := scenario.Rotated(ns, "db-tls", "1", "2")
	// The expiry rotations requested, by Secret and reason.
	rotations := func(ds []Decision) []string {
		var out []string
		for _, d := range ds {
			if p, ok := d.Payload.(events.CertificateRotationRequested); ok {
				out = append(out, p.Secret+": "+p.Reason)
			}
		}
		return out
	}
	r := DefaultRules()
	st := NewState(ns)
	ds := feed(t, r, st,
		cert("other-tls", "9", 60, owner("other")),
		snap("data-db", "db-s1", "db", "db-sts", "db-sts-0", 1),
		// Owner db-sts names the application db (its snapshot came after
		// the view cache was built).
		cert("db-tls", "1", 5, owner("db-sts")),
		// A certificate naming pods first: the pod index starts here.
		cert("pod-tls", "3", 60, pods("nobody-0")),
		snap("data-api", "api-s1", "api", "api-sts", "api-pod", 2),
		// Pod api-pod came after the pod index.
		cert("api-tls", "4", 60, pods("api-pod")),
		// A workload named like the application (not its owner).
		cert("api-named-tls", "6", 60, owner("api")),
		// Users that grow: other-tls now names db's owner too.
		cert("other-tls", "9", 60, events.CertificateUsers{Workloads: []events.WorkloadRef{
			{Kind: "StatefulSet", Namespace: ns, Name: "other"}, {Kind: "StatefulSet", Namespace: ns, Name: "db-sts"}}}),
		rotated,
	)
	view := Derive(r, st)
	secrets := map[string][]string{}
	for _, av := range view.Apps {
		secrets[av.App] = av.Secrets
	}
	if want := map[string][]string{"db": {"db-tls", "other-tls"}, "api": {"api-named-tls", "api-tls"}}; !cmp.Equal(secrets, want) {
		t.Fatalf("the applications' Secrets are %v, want %v", secrets, want)
	}
	want := []string{"db-tls: certificate 1 expires in 5 days (at or below the rotation threshold of 7 days)"}
	if got := rotations(ds); !cmp.Equal(got, want) {
		t.Fatalf("expiry rotations requested: %q, want %q", got, want)
	}
	// Read back: no cache, no index; the events after it build them again.
	js, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	back := NewState(ns)
	if err := json.Unmarshal(js, back); err != nil {
		t.Fatal(err)
	}
	ds = feed(t, r, back,
		snap("data-web", "web-s1", "web", "web-sts", "web-pod", 3),
		cert("web-tls", "5", 60, owner("web-sts")),
		cert("pod-tls", "3", 60, pods("nobody-0", "web-pod")),
		cert("db-tls", "2", 3, owner("db-sts")),
	)
	secrets = map[string][]string{}
	for _, av := range Derive(r, back).Apps {
		secrets[av.App] = av.Secrets
	}
	if want := map[string][]string{"db": {"db-tls", "other-tls"}, "api": {"api-named-tls", "api-tls"}, "web": {"pod-tls", "web-tls"}}; !cmp.Equal(secrets, want) {
		t.Fatalf("after reading the state back, the applications' Secrets are %v, want %v", secrets, want)
	}
	// Only the new serial of db-tls: the others' were requested before.
	want = []string{"db-tls: certificate 2 expires in 3 days (at or below the rotation threshold of 7 days)"}
	if got := rotations(ds); !cmp.Equal(got, want) {
		t.Fatalf("after reading the state back, expiry rotations requested: %q, want %q", got, want)
	}
}
