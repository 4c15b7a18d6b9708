package restore

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func rec(pvc, snap string, rev int, at time.Duration, id string) Recommendation {
	return Recommendation{Namespace: "shop", Incident: "inc-1", PVC: pvc, VolumeSnapshot: snap, Revision: rev, At: t0.Add(at), EventID: id}
}

// keep folds events through Supersedes as the store does.
func keep(evs []Recommendation) *Recommendation {
	var cur *Recommendation
	for _, e := range evs {
		if Supersedes(e, cur) {
			c := e
			cur = &c
		}
	}
	return cur
}

func TestSupersedesConvergesOnTheNewestRevisionInAnyOrder(t *testing.T) {
	evs := []Recommendation{
		rec("data", "s1", 1, 0, "e1"),
		rec("data", "s2", 2, time.Minute, "e2"),
		rec("data", "s3", 3, 2*time.Minute, "e3"),
		rec("data", "s2", 2, time.Minute, "e2"), // a duplicate
		rec("data", "s1", 1, 0, "e1"),           // a duplicate
	}
	want := evs[2]
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range 50 {
		order := append([]Recommendation(nil), evs...)
		rnd.Shuffle(len(order), func(a, b int) { order[a], order[b] = order[b], order[a] })
		got := keep(order)
		if got == nil || *got != want {
			t.Fatalf("order %d %v: kept %+v, want %+v", i, order, got, want)
		}
	}
	// A revision never goes back, even when the older event is later.
	if Supersedes(rec("data", "s1", 1, time.Hour, "e9"), &evs[1]) {
		t.Error("revision 1 published later superseded revision 2")
	}
}

func TestFollow(t *testing.T) {
	one := []Recommendation{rec("data", "s2", 2, 0, "e2")}
	two := []Recommendation{rec("data", "s2", 2, 0, "e2"), rec("logs", "l1", 1, 0, "e3")}
	for _, tt := range []struct {
		name       string
		recs       []Recommendation
		pvc        string
		want       string
		wantReason string
	}{
		{"no recommendation yet: wait", nil, "", "", ""},
		{"another incident's does not count", []Recommendation{{Incident: "inc-2", PVC: "data", VolumeSnapshot: "x"}}, "", "", ""},
		{"the only claim's recommendation", one, "", "s2", ""},
		{"the named claim's", two, "logs", "l1", ""},
		{"a claim without recommendation: wait", one, "other", "", ""},
		{"several claims and no pvc: refused naming them", two, "", "", "AmbiguousIncident"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Follow(tt.recs, "inc-1", tt.pvc)
			if tt.wantReason != "" {
				f, ok := errors.AsType[*failure](err)
				if !ok || f.reason != tt.wantReason || !strings.Contains(f.message, "data, logs") {
					t.Fatalf("err %v, want %s naming the claims", err, tt.wantReason)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			snap := ""
			if got != nil {
				snap = got.VolumeSnapshot
			}
			if snap != tt.want {
				t.Errorf("followed %q, want %q", snap, tt.want)
			}
		})
	}
}

func TestSafetySnapshotFate(t *testing.T) {
	exp := t0.Add(-time.Minute)
	for _, tt := range []struct {
		name string
		s    SafetySnapshot
		del  bool
		why  string
	}{
		{"kept while its Restore runs", SafetySnapshot{RestoreRunning: true, ExpiresAt: exp}, false, "its Restore runs"},
		{"kept until the expiry is recorded", SafetySnapshot{}, false, "not recorded"},
		{"kept before the expiry", SafetySnapshot{ExpiresAt: t0.Add(time.Hour)}, false, "pinned until 2026-12-07T04:00:00Z"},
		{"kept after it when a pin request pins it", SafetySnapshot{ExpiresAt: exp, PinnedBy: "known-good of incident inc-1"}, false, "known-good"},
		{"kept after it while a Restore restores from it", SafetySnapshot{ExpiresAt: exp, UsedBy: []string{"undo"}}, false, "undo"},
		{"deleted after it otherwise", SafetySnapshot{ExpiresAt: exp}, true, "expired at 2026-12-07T02:59:00Z"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			del, why := SafetySnapshotFate(tt.s, t0)
			if del != tt.del || !strings.Contains(why, tt.why) {
				t.Errorf("SafetySnapshotFate = %v, %q; want %v, %q", del, why, tt.del, tt.why)
			}
		})
	}
}

func TestPinnedBy(t *testing.T) {
	own := map[string]string{"stateguard.io/pinned-reason": safetyPinReason + "data taken by Restore r1"}
	for _, tt := range []struct {
		name        string
		labels, ann map[string]string
		want        string
	}{
		{"its Restore's pin only", map[string]string{"stateguard.io/pinned": "true"}, own, ""},
		{"a pin request applied", map[string]string{"stateguard.io/pinned": "true"},
			map[string]string{"stateguard.io/pinned-reason": "known-good", "stateguard.io/pin-updated-at": "2026-12-07T03:00:00Z"}, "known-good"},
		{"pinned by hand", map[string]string{"stateguard.io/pinned": "true"}, map[string]string{"stateguard.io/pinned-reason": "keep for the audit"}, "keep for the audit"},
		{"unpinned by a request", nil, map[string]string{"stateguard.io/pin-updated-at": "2026-12-07T03:00:00Z"}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			vs := safetyObject(tt.labels, tt.ann)
			if diff := cmp.Diff(tt.want, pinnedBy(vs)); diff != "" {
				t.Errorf("pinnedBy (-want +got):\n%s", diff)
			}
		})
	}
}
